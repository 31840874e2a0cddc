"""A real nginx on a loopback port for the NginxRouter tests: its nginx.conf, the router over it, run and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from sap_llm_release.rehearsal.processes import alive
from sap_llm_release.routers.base import ALL_BLUE
from sap_llm_release.routers.nginx import NginxRouter

# ports of their own for each pytest-xdist worker, below the ephemeral range
ROUTER_PORT = 30100 + 10 * int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
BLUE, GREEN = f"127.0.0.1:{ROUTER_PORT + 1}", f"127.0.0.1:{ROUTER_PORT + 2}"
STATE_URL = f"http://127.0.0.1:{ROUTER_PORT}/_router/state"


def nginx_conf(directory, extra: str = "") -> str:
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 16; }}
http {{
    access_log off;
    client_body_temp_path {directory}/tmp/body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    include {directory}/upstream.conf;
    server {{
        listen 127.0.0.1:{ROUTER_PORT};
        location = /_router/state {{ default_type application/json; return 200 $sap_llm_router_state; }}
        location / {{ proxy_pass http://sap_llm; }}
    }}
    {extra}
}}
"""


def nginx_router(directory: Path) -> NginxRouter:
    """The router over a nginx.conf written in ``directory``; nginx itself is not started."""
    (directory / "tmp").mkdir()
    (directory / "nginx.conf").write_text(nginx_conf(directory))
    return NginxRouter(
        nginx_conf=directory / "nginx.conf",
        upstream_file=directory / "upstream.conf",
        addresses={"blue": BLUE, "green": GREEN},
        state_url=STATE_URL,
        apply_timeout_s=3,
    )


def nginx(router: NginxRouter, *args: str) -> None:
    subprocess.run(["nginx", "-c", str(router.nginx_conf), "-p", str(router.nginx_conf.parent), *args],
                   check=True, capture_output=True)


def _stop(pid: int) -> None:
    """Fast shutdown, waited for: the next test's nginx listens on the same port."""
    os.kill(pid, signal.SIGTERM)
    until(lambda: alive(pid), False, timeout_s=10)


def until(read, expected, timeout_s: float = 5):
    """What ``read()`` returns once it returns ``expected`` (a reload is applied asynchronously)."""
    return Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.05),
                    retry=retry_if_result(lambda value: value != expected))(read)


@contextlib.contextmanager
def running(router: NginxRouter) -> Iterator[NginxRouter]:
    """``router`` over a running nginx that routes all traffic to blue, stopped on the way out."""
    router.prepare(ALL_BLUE)
    nginx(router)
    pid = int((router.nginx_conf.parent / "nginx.pid").read_text())
    try:
        Retrying(stop=stop_after_delay(10), wait=wait_fixed(0.05), reraise=True)(router.get_weights)
        yield router
    finally:
        _stop(pid)
