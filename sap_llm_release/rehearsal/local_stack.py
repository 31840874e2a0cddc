"""The local stack the rehearsal runs against: blue in production behind real nginx, a real Prometheus scraping
both colours every second, and a steady synthetic traffic source.

    python -m sap_llm_release.rehearsal.local_stack up --dir .stack [--base-port 18080]
    python -m sap_llm_release.rehearsal.local_stack down --dir .stack

``up`` writes ``stack.json``, which the local target reads; ``down`` stops every process ``up`` started.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from string import Template

import httpx

from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.processes import alive, stop_group
from sap_llm_release.rehearsal.stores import STORES
from sap_llm_release.rehearsal.traffic import API_KEY_ENV
from sap_llm_release.routers.base import ALL_BLUE
from sap_llm_release.targets import ROUTER_STATE_PATH, Target, local_target
from sap_llm_release.tls import default_tls

PROJECT_DIR = Path(__file__).resolve().parents[2]
STACK_FILES = PROJECT_DIR / "stack"
SERVER_SCRIPT = PROJECT_DIR / "inference_images" / "sap_llm_server" / "server.py"
# The inference images' entrypoints as local processes, each from the environment `make setup` builds for it.
JOB_COMMANDS = {
    "validator": [str(PROJECT_DIR / ".venv-validator" / "bin" / "python"), "-m", "sap_llm_validator"],
    "loadtest": [str(PROJECT_DIR / ".venv-loadtest" / "bin" / "python"),
                 str(PROJECT_DIR / "inference_images" / "loadtest" / "loadtest.py")],
}
JOB_ENV = {"PYTHONPATH": f"{PROJECT_DIR / 'inference_images'}:{PROJECT_DIR / 'inference_images' / 'validator'}"}
# Prometheus runs as three replicas (HA as in production): the first is the one the release asks, all three are
# counted by the prometheus_replicas gate.
PROMETHEUS_REPLICAS = ("prometheus", "prometheus-2", "prometheus-3")
BACKGROUND = ("traffic", *PROMETHEUS_REPLICAS, "alertmanager", "redis")
# The rehearsal's knowledge base and process memory graph (`make setup` builds them: sap_llm_release.rehearsal.stores).
REHEARSAL_STORES = PROJECT_DIR / ".models" / "rehearsal" / "stores"


class StackError(RuntimeError):
    """The local stack could not be started."""


def _render(template: str, target: Path, **values: str) -> None:
    target.write_text(Template((STACK_FILES / template).read_text()).substitute(values))


def _start(name: str, command: list[str], stack_dir: Path, env: dict[str, str] | None = None) -> int:
    log = (stack_dir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, **(env or {})}
    )
    log.close()
    (stack_dir / f"{name}.pid").write_text(str(process.pid))
    return process.pid


def _wait_http(url: str, timeout_s: float, what: str, answered=lambda response: True) -> None:
    """GET ``url`` every 0.2 s until it answers 200 (and ``answered`` holds for the response), for at most
    ``timeout_s``."""
    def get() -> tuple[bool, str]:
        try:
            response = httpx.get(url, timeout=2, verify=default_tls())
        except httpx.HTTPError as exc:
            return False, repr(exc)
        return response.status_code == 200 and answered(response), f"answered {response.status_code}"

    done, last = poll_until(get, lambda result: result[0], timeout_s=timeout_s, interval_s=0.2)
    if not done:
        raise StackError(f"{what} did not answer {url} within {timeout_s:.0f}s: {last}")


def up(stack_dir: Path, base_port: int = 18080, blue_version: str = "1.0.0", traffic_rps: float = 20.0,
       stores_dir: Path = REHEARSAL_STORES) -> dict:
    """Start the stack in ``stack_dir``; return what ``stack.json`` holds. The data stores found in ``stores_dir``
    are the target's; one that is missing there is not configured (its gates fail saying so)."""
    for tool in ("nginx", "prometheus", "prometheus-alertmanager", "redis-server"):
        if shutil.which(tool) is None:
            raise StackError(f"{tool} is not installed (make setup installs it)")
    down(stack_dir)
    stack_dir = stack_dir.resolve()
    for sub in ("reports", "nginx-tmp", "alertmanager-data", *(f"{name}-data" for name in PROMETHEUS_REPLICAS)):
        (stack_dir / sub).mkdir(parents=True, exist_ok=True)
    ports = {"router": base_port, "blue": base_port + 1, "green": base_port + 2, "prometheus": base_port + 3,
             "router_tls": base_port + 4, "alertmanager": base_port + 5, "redis": base_port + 7,
             "prometheus-2": base_port + 8, "prometheus-3": base_port + 9}
    tls = make_tls_material(stack_dir / "tls")
    auth = make_credentials(stack_dir / "auth")
    stack = _describe(ports, tls, auth, stores_dir)
    (stack_dir / "stack.json").write_text(json.dumps(stack, indent=2))
    target = local_target(stack_dir)
    target.deployer.deploy("blue", blue_version)
    ready, seen = target.deployer.wait_ready("blue", 30)
    if not ready:
        raise StackError(f"blue did not become ready: {seen}")
    _start_router(stack_dir, ports, tls, target)
    _wait_http(f"{stack['router_url']}/health", 10, "nginx")
    # traffic before monitoring, as in production: a Prometheus that scraped blue before its first document would
    # record minutes of no throughput, and the throughput SLO's 30-day budget would read spent for a quarter hour
    _start("traffic", [sys.executable, "-m", "sap_llm_release.rehearsal.traffic", "--url", stack["router_url"],
                       "--rps", str(traffic_rps)], stack_dir, env={API_KEY_ENV: auth["api_key"]})
    _wait_http(f"http://127.0.0.1:{ports['blue']}/metrics", 15, "blue's count of the traffic's documents",
               answered=_documents_processed)
    _start_monitoring(stack_dir, ports, nowhere=f"http://127.0.0.1:{base_port + 6}")
    _start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(ports["redis"]), "--save", "",
                     "--appendonly", "no", "--protected-mode", "yes"], stack_dir)
    return stack


def _documents_processed(response: httpx.Response) -> bool:
    """Whether a slot's metrics count a processed document."""
    return any(float(line.rsplit(" ", 1)[1]) > 0 for line in response.text.splitlines()
               if line.startswith("sap_llm_documents_processed_total"))


def _describe(ports: dict[str, int], tls: dict, auth: dict, stores_dir: Path) -> dict:
    """What ``stack.json`` holds: the ports, URLs, commands and credentials the local target is built from."""
    return {
        "ports": ports,
        "server_command": [sys.executable, str(SERVER_SCRIPT), "--enable-fault-injection", "--jwt-secret-file",
                           str(auth["jwt_secret_file"]), "--api-keys-file", str(auth["api_keys_file"])],
        "project_dir": str(PROJECT_DIR),
        "job_commands": JOB_COMMANDS,
        "job_env": {**JOB_ENV, API_KEY_ENV: auth["api_key"]},
        "api_key": auth["api_key"],
        "jwt_secret_file": str(auth["jwt_secret_file"]),
        "prometheus_url": f"http://127.0.0.1:{ports['prometheus']}",
        "prometheus_replicas": [f"http://127.0.0.1:{ports[name]}" for name in PROMETHEUS_REPLICAS],
        "alertmanager_url": f"http://127.0.0.1:{ports['alertmanager']}",
        "router_url": f"http://127.0.0.1:{ports['router']}",
        "public_url": f"https://127.0.0.1:{ports['router_tls']}",
        "ca_file": str(tls["ca"]),
        "services": {"redis": f"redis://127.0.0.1:{ports['redis']}/0", **_stores(stores_dir)},
    }


def _start_router(stack_dir: Path, ports: dict[str, int], tls: dict, target: Target) -> None:
    """nginx in front of the slots (plain and TLS), all traffic on blue."""
    _render("nginx.conf.tmpl", stack_dir / "nginx.conf", dir=str(stack_dir), router_port=str(ports["router"]),
            router_state_path=ROUTER_STATE_PATH, router_tls_port=str(ports["router_tls"]),
            certificate=str(tls["certificate"]), key=str(tls["key"]),
            user="user root;" if os.geteuid() == 0 else "")
    target.router.prepare(ALL_BLUE)
    nginx = subprocess.run(
        ["nginx", "-c", str(stack_dir / "nginx.conf"), "-p", str(stack_dir)], capture_output=True, text=True
    )
    if nginx.returncode != 0:
        raise StackError(f"nginx did not start: {nginx.stderr.strip()}")


def _start_monitoring(stack_dir: Path, ports: dict[str, int], nowhere: str) -> None:
    """Alertmanager (its PagerDuty and Slack receivers point ``nowhere``: deliveries fail, logged) and the three
    Prometheus replicas, each scraping the slots, nginx and one another."""
    replicas = ", ".join(f'"127.0.0.1:{ports[replica]}"' for replica in PROMETHEUS_REPLICAS)
    for name in PROMETHEUS_REPLICAS:
        _render("prometheus.yml.tmpl", _prometheus_config(stack_dir, name), rules=str(STACK_FILES / "rules.yml"),
                slo_rules=str(STACK_FILES / "slo_rules.yml"),
                interval="1s" if name == PROMETHEUS_REPLICAS[0] else "5s", prometheus_targets=replicas,
                blue_port=str(ports["blue"]), green_port=str(ports["green"]),
                alertmanager_port=str(ports["alertmanager"]))
    start_alertmanager(stack_dir, ports["alertmanager"], pagerduty_url=f"{nowhere}/v2/enqueue",
                       slack_url=f"{nowhere}/slack")
    waits = [launch_prometheus(stack_dir, ports[name], name) for name in PROMETHEUS_REPLICAS]
    for wait in waits:  # started side by side: each takes about 5 s to discover its scrape targets
        wait()


def _prometheus_config(stack_dir: Path, name: str) -> Path:
    return stack_dir / f"{name}.yml"


def start_alertmanager(stack_dir: Path, port: int, *, pagerduty_url: str, slack_url: str,
                       env: dict[str, str] | None = None) -> None:
    """Alertmanager on ``port`` with the stack's routes (stack/alertmanager.yml.tmpl), its PagerDuty receiver posting
    to ``pagerduty_url`` and its Slack receiver to ``slack_url``; its pid in ``alertmanager.pid``. ``env`` is added
    to its environment (``SSL_CERT_FILE``: the CA it verifies the receivers with)."""
    (stack_dir / "alertmanager-data").mkdir(parents=True, exist_ok=True)
    _render("alertmanager.yml.tmpl", stack_dir / "alertmanager.yml", pagerduty_url=pagerduty_url, slack_url=slack_url)
    _start("alertmanager", [
        "prometheus-alertmanager",
        f"--config.file={stack_dir / 'alertmanager.yml'}",
        f"--storage.path={stack_dir / 'alertmanager-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # one instance: no gossip port
    ], stack_dir, env=env)
    _wait_http(f"http://127.0.0.1:{port}/-/ready", 30, "Alertmanager")


def _stores(stores_dir: Path) -> dict[str, str]:
    paths = {store: stores_dir.resolve() / f"{store}.sqlite" for store in STORES}
    return {store: f"sqlite:///{path}" for store, path in paths.items() if path.exists()}


def make_credentials(directory: Path) -> dict:
    """The service's credentials on the local stack: an HS256 key for JWTs and one API key (the service is given
    only its SHA-256); clients of the stack read the key from ``stack.json`` or ``SAP_LLM_API_KEY``."""
    directory.mkdir(parents=True, exist_ok=True)
    api_key = secrets.token_urlsafe(32)
    files = {"jwt_secret_file": directory / "jwt-secret", "api_keys_file": directory / "api-keys"}
    files["jwt_secret_file"].write_text(secrets.token_hex(32))
    files["api_keys_file"].write_text(hashlib.sha256(api_key.encode()).hexdigest() + "\n")
    for path in files.values():
        path.chmod(0o600)
    return {**files, "api_key": api_key}


def make_tls_material(directory: Path, days: int = 90) -> dict[str, Path]:
    """A CA of the stack's own and a server certificate it signed for 127.0.0.1 / localhost, valid ``days``: the
    router's public (TLS) listener presents it, and the TLS checks verify it against that CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, public_key, issuer: x509.Name, signing_key, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer).public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sap-llm local stack CA")])
    ca_cert = certificate("sap-llm local stack CA", ca_key.public_key(), ca_name, ca_key, ca=True)
    server_cert = certificate("127.0.0.1", server_key.public_key(), ca_name, ca_key, ca=False)
    paths = {"ca": directory / "ca.pem", "certificate": directory / "router.pem", "key": directory / "router-key.pem"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["certificate"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


def start_prometheus(stack_dir: Path, port: int, name: str = "prometheus") -> None:
    """Start the Prometheus replica ``name`` on ``port`` over its config and its own TSDB; return once it is ready
    and scraping."""
    launch_prometheus(stack_dir, port, name)()


def launch_prometheus(stack_dir: Path, port: int, name: str) -> Callable[[], None]:
    """Start the Prometheus replica ``name``; return the function that waits until it is ready and scraping."""
    _start(
        name,
        [
            "prometheus",
            f"--config.file={_prometheus_config(stack_dir, name)}",
            f"--storage.tsdb.path={stack_dir / f'{name}-data'}",
            "--storage.tsdb.retention.time=30d",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stack_dir,
    )

    def ready_and_scraping() -> None:
        _wait_http(f"http://127.0.0.1:{port}/-/ready", 30, f"Prometheus {name}")
        # ready is not yet scraping: a replica that has not discovered its targets would read as one scraping nothing,
        # and a target not scraped yet (health "unknown", up to a scrape interval after the start) as one not up
        _wait_http(f"http://127.0.0.1:{port}/api/v1/targets?state=active", 30, f"Prometheus {name}'s scrape targets",
                   answered=_every_target_scraped)

    return ready_and_scraping


def _every_target_scraped(response: httpx.Response) -> bool:
    targets = response.json()["data"]["activeTargets"]
    return bool(targets) and all(target["health"] != "unknown" for target in targets)


def down(stack_dir: Path) -> list[str]:
    """Stop whatever ``up`` started in ``stack_dir``; return what was stopped."""
    stopped = []
    for name in BACKGROUND:
        pid_file = stack_dir / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if alive(pid):
                stop_group(pid)
                stopped.append(name)
            pid_file.unlink()
    if _stop_nginx(stack_dir):
        stopped.append("nginx")
    if (stack_dir / "stack.json").exists():
        target = local_target(stack_dir)
        for colour in ("green", "blue"):
            if target.deployer.remove(colour):
                stopped.append(colour)
    return stopped


def _stop_nginx(stack_dir: Path, grace_s: float = 10.0) -> bool:
    """Graceful quit; a master still there after ``grace_s`` gets SIGTERM (fast shutdown)."""
    try:
        pid = int((stack_dir / "nginx.pid").read_text().strip())
    except (OSError, ValueError):
        return False
    subprocess.run(["nginx", "-c", str(stack_dir / "nginx.conf"), "-p", str(stack_dir), "-s", "quit"],
                   capture_output=True)
    def gone() -> bool:
        return not alive(pid)

    if not poll_until(gone, bool, timeout_s=grace_s, interval_s=0.05):  # a graceful quit, then SIGTERM
        os.kill(pid, signal.SIGTERM)
        poll_until(gone, bool, timeout_s=5, interval_s=0.05)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start or stop the local rehearsal stack.")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--base-port", type=int, default=18080)
    parser.add_argument("--blue-version", default="1.0.0")
    parser.add_argument("--traffic-rps", type=float, default=20.0)
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    if args.action == "up":
        print(json.dumps(up(args.dir, args.base_port, args.blue_version, args.traffic_rps), indent=2))
    else:
        print("stopped:", ", ".join(down(args.dir)) or "nothing")


if __name__ == "__main__":
    main()
