"""Blue and green as local processes of the reference SAP_LLM service, one port each."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from sap_llm_release.deployers.base import Colour, Deployer, DeployError
from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.processes import alive, stop_group
from sap_llm_release.tls import default_tls


class LocalProcessDeployer(Deployer):
    """``ports`` and ``slots`` are keyed by role; state, logs and the service's colour label follow the slot."""

    def __init__(
        self,
        *,
        state_dir: Path,
        ports: dict[str, int],
        server_command: list[str],
        slots: dict[str, str] | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.ports = ports
        self.server_command = server_command
        self.slots = slots or {colour: colour for colour in ports}

    def url(self, colour: Colour) -> str:
        return f"http://127.0.0.1:{self.ports[colour]}"

    def _state_file(self, colour: Colour) -> Path:
        return self.state_dir / f"{self.slots[colour]}.json"

    def _log_file(self, colour: Colour) -> Path:
        return self.state_dir / f"{self.slots[colour]}.log"

    def _state(self, colour: Colour) -> dict | None:
        try:
            state = json.loads(self._state_file(colour).read_text())
        except (OSError, ValueError):
            return None
        return state if alive(state.get("pid", 0)) else None

    def running_version(self, colour: Colour) -> str | None:
        state = self._state(colour)
        return state["version"] if state else None

    def deploy(self, colour: Colour, version: str) -> bool:
        if self.running_version(colour) == version:
            return False
        self.remove(colour)
        self._archive_log(colour)
        slot, port = self.slots[colour], str(self.ports[colour])
        command = [*self.server_command, "--colour", slot, "--version", version, "--port", port]
        log = self._log_file(colour).open("ab")
        try:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        except OSError as exc:
            raise DeployError(f"local {colour} deployment: cannot start {command}: {exc}") from exc
        finally:
            log.close()
        state = {"pid": process.pid, "version": version, "port": self.ports[colour], "started_at": time.time()}
        self._state_file(colour).write_text(json.dumps(state))
        return True

    def wait_ready(self, colour: Colour, timeout_s: float) -> tuple[bool, str]:
        """GET the slot's readiness endpoint every 0.2 s until it answers 200, for at most ``timeout_s``; a process
        that is gone ends the wait at once."""
        url = self.url(colour) + "/health/ready"

        def probe() -> tuple[bool | None, str]:
            if self._state(colour) is None:
                return False, f"local {colour} deployment is not running ({self._log_tail(colour)})"
            try:
                response = httpx.get(url, timeout=2.0, verify=default_tls())
            except httpx.HTTPError as exc:
                return None, f"GET {url} failed: {exc!r}"
            return (True if response.status_code == 200 else None), f"GET {url} -> {response.status_code}"

        ready, seen = poll_until(probe, lambda result: result[0] is not None, timeout_s=timeout_s, interval_s=0.2)
        if ready is None:
            return False, f"not ready after {timeout_s:.0f}s: {seen}"
        return ready, seen

    def remove(self, colour: Colour) -> bool:
        state = self._state(colour)
        self._state_file(colour).unlink(missing_ok=True)
        if state is None:
            return False
        stop_group(state["pid"])
        return True

    def logs(self, colour: Colour) -> str:
        """The log of the deployment ``colour`` runs now (earlier deployments' logs are archived beside it)."""
        try:
            return self._log_file(colour).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _archive_log(self, colour: Colour) -> None:
        """Keep an earlier deployment's log beside the new one, so ``logs`` shows only the running deployment."""
        current = self._log_file(colour)
        if current.exists():
            current.rename(current.with_name(f"{self.slots[colour]}.{int(current.stat().st_mtime * 1000)}.log"))

    def _log_tail(self, colour: Colour) -> str:
        tail = self.logs(colour).strip().splitlines()[-3:]
        return " | ".join(tail) or "no log"

