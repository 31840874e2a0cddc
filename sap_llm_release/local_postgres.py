"""A throwaway PostgreSQL server (Debian's binaries): initdb in a temp dir, run as the ``postgres`` user on a
loopback port, removed afterwards. The demo keeps Airflow's metadata in one (on SQLite, Airflow can give a new
trigger the id of one just deleted, and the old trigger's event then resumes the wrong task); the ledger tests run
on one."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def temporary_postgres(database: str = "ledger_test", driver: str = "psycopg"):
    """Yield a SQLAlchemy URL (``postgresql+<driver>``) of a fresh database, or None when PostgreSQL is not
    installed."""
    binaries = _binaries()
    if binaries is None:
        yield None
        return
    data = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(binaries / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    subprocess.run(
        _as_postgres([
            str(binaries / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "server.log"), "-w", "start",
            "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off",
        ]),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(_as_postgres([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]),
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready")
            time.sleep(0.2)
        subprocess.run(_as_postgres([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                     database]), check=True, capture_output=True)
        yield f"postgresql+{driver}://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)
