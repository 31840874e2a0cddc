"""A throwaway Redis server (Debian's ``redis-server``) on a loopback port, without persistence: the Celery broker of
the rehearsal on Airflow's CeleryExecutor."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.processes import free_port, stop_group


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def temporary_redis():
    """Yield a ``redis://`` URL of a fresh Redis server, or None when ``redis-server`` is not installed."""
    binary = shutil.which("redis-server", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/bin")
    if binary is None:
        yield None
        return
    data = Path(tempfile.mkdtemp(prefix="celery-redis-"))
    port = free_port()
    log = (data / "redis.log").open("ab")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(data)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    try:
        if not poll_until(lambda: _answers_ping(port), bool, timeout_s=15, interval_s=0.1):
            raise RuntimeError(f"Redis on port {port} did not answer PING within 15 s; see {data / 'redis.log'}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_group(process.pid)
        process.wait()
        shutil.rmtree(data, ignore_errors=True)
