"""Test-side handle on the live local stack: reset between releases, inject faults, watch the router."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal import local_stack
from sap_llm_release.rehearsal.processes import stop_group
from sap_llm_release.routers.base import ALL_BLUE
from sap_llm_release.targets import Target, local_target

BLUE_VERSION = "1.0.0"


@dataclass
class LiveStack:
    dir: Path
    info: dict

    @classmethod
    def start(cls, directory: Path, base_port: int) -> LiveStack:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, local_stack.up(directory, base_port=base_port, blue_version=BLUE_VERSION))

    def stop(self) -> None:
        local_stack.down(self.dir)

    @property
    def target(self) -> Target:
        return local_target(self.dir)

    @property
    def prometheus_url(self) -> str:
        return self.info["prometheus_url"]

    @property
    def prometheus_connection(self) -> str:
        port = self.info["ports"]["prometheus"]
        return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})

    def reset(self) -> None:
        target = self.target
        if target.deployer.running_version("blue") != BLUE_VERSION:  # none, or a release promoted into its slot
            target.deployer.deploy("blue", BLUE_VERSION)
        ready, seen = target.deployer.wait_ready("blue", 30)
        assert ready, seen
        target.router.set_weights(ALL_BLUE)
        target.deployer.remove("green")
        self.ensure_prometheus()

    def query(self, promql: str) -> float | None:
        """One number from the Prometheus the release asks (None: no data)."""
        result = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql},
                           timeout=5).json()["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def critical_alerts(self) -> int:
        """Critical alerts pending or firing on the Prometheus the release asks."""
        return int(self.query('count(ALERTS{severity="critical"})') or 0)

    def forget_alerts(self, timeout_s: float = 30) -> None:
        """Give the stack the monitoring history of a new one when an earlier rehearsal's injected errors left a
        critical alert pending or firing: that alert holds for the rule's rate window (a minute) after its cause is
        gone, and production would not start a release into it either. The Prometheus the release asks starts again
        on an empty TSDB; return once it has scraped blue's traffic for most of a rehearsal rate window (10 s)."""
        if not self.critical_alerts():
            return
        self.restart_monitoring(timeout_s)
        assert not self.critical_alerts()

    def restart_monitoring(self, timeout_s: float = 30) -> None:
        """Start the Prometheus the release asks again on an empty TSDB; return once it has scraped blue's traffic
        for most of a rehearsal rate window (10 s)."""
        stop_group(int((self.dir / "prometheus.pid").read_text()))
        shutil.rmtree(self.dir / "prometheus-data", ignore_errors=True)
        local_stack.start_prometheus(self.dir, self.info["ports"]["prometheus"])
        traffic = {"query": 'max(count_over_time(sap_llm_requests_total{job="sap-llm",colour="blue"}[10s]))'}

        def samples() -> float:
            result = httpx.get(f"{self.prometheus_url}/api/v1/query", params=traffic, timeout=5).json()
            return float(result["data"]["result"][0]["value"][1]) if result["data"]["result"] else 0.0

        assert poll_until(samples, lambda count: count >= 8, timeout_s=timeout_s, interval_s=0.5) >= 8, \
            f"the restarted Prometheus has not scraped blue's traffic for 8 s after {timeout_s:.0f}s"

    def set_faults(self, colour: str, error_rate: float = 0.0, added_latency_s: float = 0.0,
                   failed_scrapes: int = 0) -> None:
        """Set ``colour``'s fault knobs (each one not given is off)."""
        response = httpx.post(
            f"{self.target.url(colour)}/admin/faults",
            json={"error_rate": error_rate, "added_latency_s": added_latency_s, "failed_scrapes": failed_scrapes},
            timeout=5,
        )
        response.raise_for_status()

    def when_green_weight(self, weight: int, action, timeout_s: float = 300) -> threading.Thread:
        """Run ``action()`` in the background as soon as the router sends ``weight`` % to green."""

        router = self.target.router

        def watch() -> None:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    if router.get_weights().green == weight:
                        action()
                        return
                except Exception:  # the upstream file is being replaced; look again
                    pass
                time.sleep(0.05)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def kill(self, colour: str) -> float:
        """SIGKILL the process group of the slot ``colour`` (named as itself), as a crash would; return when."""
        pid = json.loads((self.dir / f"{colour}.json").read_text())["pid"]
        os.killpg(pid, signal.SIGKILL)
        return time.time()

    def requests_sent_to(self, colour: str, since: float = 0.0) -> list[str]:
        """nginx's access-log lines from ``since`` (epoch seconds) on whose upstream addresses (each server a
        request was sent to, retries included) name the slot ``colour``."""
        address = f"127.0.0.1:{self.info['ports'][colour]}"
        lines = (self.dir / "access.log").read_text().splitlines()
        return [line for line in lines if float(line.split(" ", 1)[0]) >= since
                and address in re.findall(r"\d+\.\d+\.\d+\.\d+:\d+", line.split('"', 1)[0])]

    def kill_prometheus(self) -> None:
        pid = int((self.dir / "prometheus.pid").read_text())
        os.killpg(pid, signal.SIGKILL)

    def ensure_prometheus(self) -> None:
        try:
            if httpx.get(f"{self.prometheus_url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        port = self.info["ports"]["prometheus"]
        local_stack.start_prometheus(self.dir, port)


@dataclass
class ReloadThatDoesNotTakeEffect:
    """nginx's next reload fails in its master the way a taken listen address makes it fail: ``nginx -t`` passes,
    ``nginx -s reload`` exits 0, the master logs ``still could not bind()`` and keeps serving the old configuration.

    ``arm()`` holds a loopback socket and adds a server block listening on its address to the stack's nginx.conf;
    with ``once``, the socket is let go once the error log shows one failed reload, so the reload after it (a
    rollback's) applies; without, every reload fails until ``disarm()``, which puts nginx.conf back and reloads."""

    stack_dir: Path
    once: bool = True
    failed_reloads: int = 0
    _original: str | None = field(default=None, repr=False)
    _holder: socket.socket | None = field(default=None, repr=False)
    _log_offset: int = field(default=0, repr=False)

    def arm(self) -> None:
        conf, log = self.stack_dir / "nginx.conf", self.stack_dir / "nginx-error.log"
        self._holder = socket.create_server(("127.0.0.1", 0))
        port = self._holder.getsockname()[1]
        self._original = conf.read_text()
        offset = self._log_offset = log.stat().st_size if log.exists() else 0
        conf.write_text(self._original.replace(
            "http {\n", f"http {{\n    server {{ listen 127.0.0.1:{port}; return 204; }}\n", 1))
        if self.once:
            threading.Thread(target=self._release_after_one_failure, args=(log, offset), daemon=True).start()

    def _failures_logged(self) -> int:
        with (self.stack_dir / "nginx-error.log").open() as log:
            log.seek(self._log_offset)
            return log.read().count("still could not bind()")

    def _release_after_one_failure(self, log: Path, offset: int, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with log.open() as handle:
                handle.seek(offset)
                if "still could not bind()" in handle.read():
                    self.failed_reloads += 1
                    break
            time.sleep(0.05)
        self._holder.close()

    def disarm(self, await_failures: int = 0, timeout_s: float = 10) -> None:
        """Put nginx.conf back and let the address go; without ``once``, first wait up to ``timeout_s`` for the
        error log to hold ``await_failures`` failed reloads (nginx's master logs one after its five bind tries,
        500 ms apart, well after the signal) and count them."""
        if self._holder is not None:
            if not self.once:
                self.failed_reloads = poll_until(self._failures_logged, lambda seen: seen >= await_failures,
                                                 timeout_s=timeout_s, interval_s=0.1)
            self._holder.close()
        if self._original is not None:
            (self.stack_dir / "nginx.conf").write_text(self._original)
            subprocess.run(["nginx", "-c", str(self.stack_dir / "nginx.conf"), "-p", str(self.stack_dir), "-s",
                            "reload"], check=True, capture_output=True)
