"""A local nginx upstream with weighted servers, rewritten and gracefully reloaded on each change."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sap_llm_release.routers.base import Router, RouterError, Weights

_SERVER = re.compile(r"^\s*server\s+(\S+)\s+weight=(\d+)\s*;", re.MULTILINE)


class NginxRouter(Router):
    """Routes between the blue and green addresses through ``upstream_file``, included by ``nginx_conf``."""

    def __init__(
        self, *, nginx_conf: Path, upstream_file: Path, addresses: dict[str, str], upstream: str = "sap_llm"
    ) -> None:
        self.nginx_conf = Path(nginx_conf)
        self.upstream_file = Path(upstream_file)
        self.addresses = addresses
        self.upstream = upstream

    def describe(self) -> str:
        return f"nginx upstream {self.upstream} ({self.upstream_file})"

    def get_weights(self) -> Weights:
        try:
            text = self.upstream_file.read_text()
        except OSError as exc:
            raise RouterError(f"{self.describe()} read error: {exc}") from exc
        by_address = {address: int(weight) for address, weight in _SERVER.findall(text)}
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
        servers = [
            f"    server {self.addresses[colour]} weight={weight};"
            for colour, weight in (("blue", weights.blue), ("green", weights.green))
            if weight > 0  # nginx has no weight 0: a colour without traffic is left out
        ]
        header = [f"# managed by sap-llm-release: {weights}", f"upstream {self.upstream} {{"]
        return "\n".join([*header, *servers, "    keepalive 32;", "}", ""])

    def set_weights(self, weights: Weights) -> bool:
        if self.upstream_file.exists() and self.get_weights() == weights:
            return False
        previous = self.upstream_file.read_text() if self.upstream_file.exists() else None
        self._write(self.render(weights))
        try:
            self._nginx("-t")
            if self.is_running():
                self._nginx("-s", "reload")
        except RouterError:
            if previous is None:
                self.upstream_file.unlink(missing_ok=True)
            else:
                self._write(previous)
            raise
        return True

    def is_running(self) -> bool:
        pid_file = self.nginx_conf.parent / "nginx.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), 0)
        except (OSError, ValueError):
            return False
        return True

    def _write(self, text: str) -> None:
        staging = self.upstream_file.with_suffix(".tmp")
        staging.write_text(text)
        staging.replace(self.upstream_file)

    def _nginx(self, *args: str) -> None:
        command = ["nginx", "-c", str(self.nginx_conf), "-p", str(self.nginx_conf.parent), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise RouterError(f"{self.describe()}: {' '.join(command)} failed: {result.stderr.strip()}")
