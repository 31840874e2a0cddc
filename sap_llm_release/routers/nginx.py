"""A local nginx upstream with weighted servers, rewritten and gracefully reloaded on each change.

The live split is what the running nginx answers, never the file on disk: the upstream file also defines a variable
(``$<upstream>_router_state``) holding the split it routes, and nginx.conf returns it at ``state_url``. A reload that
nginx's master could not apply (``nginx -t`` passed, ``nginx -s reload`` exited 0, but, say, a listen address was
taken) leaves the old configuration serving, and with it the old answer.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
from tenacity import RetryError, Retrying, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from sap_llm_release.routers.base import Router, RouterError, Weights
from sap_llm_release.tls import default_tls

_ERROR_LOG = re.compile(r"^\s*error_log\s+(\S+)", re.MULTILINE)
_ERROR_LINE = re.compile(r"\[(emerg|alert|crit)\]")


class NginxRouter(Router):
    """Routes between the blue and green addresses through ``upstream_file``, included by ``nginx_conf``; reads the
    live split from ``state_url`` (a location of the running nginx that returns ``$<upstream>_router_state``)."""

    def __init__(
        self, *, nginx_conf: Path, upstream_file: Path, addresses: dict[str, str], state_url: str,
        upstream: str = "sap_llm", apply_timeout_s: float = 10.0, settle_reads: int = 5,
    ) -> None:
        self.nginx_conf = Path(nginx_conf)
        self.upstream_file = Path(upstream_file)
        self.addresses = addresses
        self.state_url = state_url
        self.upstream = upstream
        self.apply_timeout_s = apply_timeout_s
        self.settle_reads = settle_reads

    def describe(self) -> str:
        return f"nginx upstream {self.upstream} ({self.upstream_file})"

    def get_weights(self) -> Weights:
        """The split the running nginx routes, as its configuration answers ``state_url``."""
        try:  # a new connection each time: a kept-alive one may reach a worker of the previous configuration
            response = httpx.get(self.state_url, headers={"Connection": "close"}, timeout=5, verify=default_tls())
            response.raise_for_status()
            servers = response.json()["servers"]
            by_address = {str(address): int(weight) for address, weight in servers.items()}
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RouterError(f"{self.describe()}: cannot read the live split from {self.state_url}: {exc!r}") from exc
        return self._weights(by_address)

    def _weights(self, by_address: dict[str, int]) -> Weights:
        unknown = set(by_address) - set(self.addresses.values())
        if unknown or not by_address:
            raise RouterError(f"{self.describe()} has unexpected servers {sorted(unknown) or 'none'}")
        blue = by_address.get(self.addresses["blue"], 0)
        green = by_address.get(self.addresses["green"], 0)
        try:
            return Weights(blue, green)
        except ValueError as exc:
            raise RouterError(f"{self.describe()} holds an invalid split: {exc}") from exc

    def render(self, weights: Weights) -> str:
        weighted = [(self.addresses[colour], weight)
                    for colour, weight in (("blue", weights.blue), ("green", weights.green))
                    if weight > 0]  # nginx has no weight 0: a colour without traffic is left out
        state = json.dumps({"upstream": self.upstream, "servers": dict(weighted)})
        return "\n".join([
            f"# managed by sap-llm-release: {weights}",
            f"upstream {self.upstream} {{",
            *(f"    server {address} weight={weight};" for address, weight in weighted),
            "    keepalive 32;",
            "}",
            "# the split this configuration routes, answered by the running nginx (see nginx.conf)",
            f"map $host ${self.upstream}_router_state {{",
            f"    default '{state}';",
            "}",
            "",
        ])

    def prepare(self, weights: Weights) -> None:
        """Write and test the upstream for an nginx that is about to start (there is nothing live to reload)."""
        self._write(self.render(weights))
        self._nginx("-t")

    def set_weights(self, weights: Weights) -> bool:
        """Apply ``weights`` and return once the running nginx answers them; RouterError, with the file put back,
        when ``nginx -t`` or the reload fails or the live split is not the wanted one within ``apply_timeout_s``."""
        if self.get_weights() == weights:
            return False
        previous = self.upstream_file.read_text() if self.upstream_file.exists() else None
        self._write(self.render(weights))
        try:
            self._nginx("-t")
            log_offset = self._error_log_size()
            self._nginx("-s", "reload")
            self._await_live(weights, log_offset)
        except RouterError:
            if previous is None:
                self.upstream_file.unlink(missing_ok=True)
            else:
                self._write(previous)
            raise
        return True

    def _await_live(self, wanted: Weights, log_offset: int) -> None:
        """Poll the live split until it has been ``wanted`` on ``settle_reads`` reads in a row. nginx's master
        applies a reload asynchronously, and for a moment workers of both configurations answer."""
        streak: list[Weights] = []

        def read() -> list[Weights]:
            live = self.get_weights()
            streak[:] = [*streak, live] if streak and streak[-1] == live else [live]
            return streak

        polling = Retrying(stop=stop_after_delay(self.apply_timeout_s), wait=wait_fixed(0.1),
                           retry=retry_if_result(lambda seen: seen[-1] != wanted or len(seen) < self.settle_reads)
                           | retry_if_exception_type(RouterError))
        try:
            polling(read)
        except RetryError as exc:
            last = exc.last_attempt
            live = str(last.exception()) if last.failed else f"live {last.result()[-1]}"
            raise RouterError(
                f"{self.describe()}: the reload did not take effect within {self.apply_timeout_s:g}s: "
                f"wanted {wanted}, {live}{self._errors_since(log_offset)}"
            ) from None

    def _error_log(self) -> Path | None:
        """nginx's error log, where nginx.conf names one."""
        try:
            found = _ERROR_LOG.search(self.nginx_conf.read_text())
        except OSError:
            return None
        return self.nginx_conf.parent / found.group(1).rstrip(";") if found else None

    def _error_log_size(self) -> int:
        path = self._error_log()
        return path.stat().st_size if path and path.exists() else 0

    def _errors_since(self, offset: int) -> str:
        """The emerg/alert/crit lines nginx logged since ``offset``: why a reload did not take effect."""
        path = self._error_log()
        try:
            with path.open(errors="replace") as log:  # type: ignore[union-attr]
                log.seek(offset)
                errors = [line.strip() for line in log.read().splitlines() if _ERROR_LINE.search(line)]
        except (OSError, AttributeError):
            return ""
        return f"; nginx error log: {' / '.join(dict.fromkeys(errors[-2:]))}" if errors else ""

    def _write(self, text: str) -> None:
        staging = self.upstream_file.with_suffix(".tmp")
        staging.write_text(text)
        staging.replace(self.upstream_file)

    def _nginx(self, *args: str) -> None:
        command = ["nginx", "-c", str(self.nginx_conf), "-p", str(self.nginx_conf.parent), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RouterError(f"{self.describe()}: {' '.join(command)} failed: {result.stderr.strip()}")
