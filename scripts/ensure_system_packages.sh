#!/usr/bin/env bash
# Install the Debian packages the local stack and the tests need, when they are missing:
# nginx (the local traffic router), prometheus (metrics), prometheus-alertmanager (alert routing), redis-server (the
# service's cache), postgresql (the ledger tests' second backend), chromium (the browser the UI tests drive through
# Playwright, by its executable path: no browser download).
set -euo pipefail
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged services; the project runs its own instances on loopback ports instead.
for service in nginx prometheus prometheus-alertmanager redis-server postgresql; do
  $SUDO service "$service" stop >/dev/null 2>&1 || true
done
