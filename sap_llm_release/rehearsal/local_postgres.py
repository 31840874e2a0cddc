"""A throwaway PostgreSQL server (Debian's binaries): initdb in a temp dir, run as the ``postgres`` user on a
loopback port, removed afterwards. The demo keeps Airflow's metadata in one (on SQLite, Airflow can give a new
trigger the id of one just deleted, and the old trigger's event then resumes the wrong task); the ledger tests run
on one."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.processes import free_port


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


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
    port = free_port()
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
        def accepting() -> bool:
            return subprocess.run(_as_postgres([str(binaries / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]),
                                  capture_output=True).returncode == 0

        if not poll_until(accepting, bool, timeout_s=30, interval_s=0.2):
            raise RuntimeError(f"PostgreSQL on port {port} did not accept connections within 30 s")
        subprocess.run(_as_postgres([str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                     database]), check=True, capture_output=True)
        yield f"postgresql+{driver}://postgres@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def restart_postgres(url: str) -> None:
    """Restart the throwaway server behind ``url`` as a failover or a crashed server would: a fast shutdown (every
    open connection cut, committed work kept), started again with the same options, waited for until it accepts."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        data_directory = conn.execute(text("SHOW data_directory")).scalar_one()
    engine.dispose()
    binaries = _binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL's binaries are missing (make setup installs Debian's postgresql)")
    log = Path(data_directory).parent / "server.log"
    subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", data_directory, "-l", str(log), "-m", "fast", "-w",
                                 "restart"]), check=True, capture_output=True)
