"""Backups of one database each, taken online and restored into a scratch database: SQLite through its online
backup API (a consistent copy while writers go on), PostgreSQL through ``pg_dump`` of an exported snapshot and
``pg_restore`` into a database created for the purpose. Each backup carries the fingerprints of what it holds,
taken from the same snapshot, so a restore can be proven whole."""

from __future__ import annotations

import glob
import hashlib
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from sap_llm_release.recovery.fingerprints import TableFingerprint, engine_for, fingerprint_database, fingerprint_tables


class BackupError(RuntimeError):
    """A backup could not be taken or restored."""


@dataclass(frozen=True)
class Backup:
    store: str
    dialect: str
    path: Path
    sha256: str
    size_bytes: int
    taken_at: datetime
    tables: dict[str, TableFingerprint]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def dialect_of(url: str) -> str:
    name = make_url(url).get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"{make_url(url).render_as_string(hide_password=True)}: backups cover SQLite and "
                          f"PostgreSQL, not {name}")
    return name


def take_backup(store: str, url: str, directory: Path, now: datetime) -> Backup:
    """Back ``store`` (the database at ``url``) up into ``directory``, named by ``now``."""
    dialect = dialect_of(url)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    if dialect == "sqlite":
        path = directory / f"{store}-{stamp}.sqlite"
        tables = _sqlite_backup(url, path)
    else:
        path = directory / f"{store}-{stamp}.dump"
        tables = _postgres_backup(url, path)
    return Backup(store, dialect, path, file_sha256(path), path.stat().st_size, now, tables)


def _sqlite_file(url: str) -> str:
    """The database file, which must exist: connecting to a missing one would create it and back up nothing."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url}: an in-memory SQLite database has nothing to back up")
    if not Path(database).is_file():
        raise BackupError(f"{url}: the database file {database} does not exist")
    return database


def _sqlite_backup(url: str, path: Path) -> dict[str, TableFingerprint]:
    partial = path.with_suffix(".partial")
    with closing(sqlite3.connect(_sqlite_file(url))) as source, closing(sqlite3.connect(partial)) as copy:
        source.backup(copy)
    partial.replace(path)
    return fingerprint_database(f"sqlite:///{path}")


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [None])[-1]
    if found is None:
        raise BackupError(f"{name} is not installed (Debian's postgresql-client provides it)")
    return found


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_backup(url: str, path: Path) -> dict[str, TableFingerprint]:
    """``pg_dump`` of a snapshot exported by a repeatable-read transaction that fingerprints the same data."""
    engine = engine_for(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
            with connection.begin():
                snapshot = connection.execute(select(func.pg_export_snapshot())).scalar_one()
                _run([_pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={path}",
                      f"--dbname={_libpq(url)}"], "pg_dump")
                return fingerprint_tables(connection)
    finally:
        engine.dispose()


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"{what} exited {done.returncode}: {done.stderr.strip()[-2000:]}")


@contextmanager
def restored(backup_path: Path, dialect: str, source_url: str, scratch_dir: Path) -> Iterator[str]:
    """Restore a backup into a scratch database and yield its URL; the scratch database is removed afterwards.
    PostgreSQL's scratch database is created on the source's server (the drill's account needs CREATEDB)."""
    if dialect == "sqlite":
        scratch_dir.mkdir(parents=True, exist_ok=True)
        scratch = scratch_dir / f"restore-{uuid.uuid4().hex[:12]}.sqlite"
        with closing(sqlite3.connect(backup_path)) as backup, closing(sqlite3.connect(scratch)) as target:
            backup.backup(target)
        try:
            yield f"sqlite:///{scratch}"
        finally:
            scratch.unlink(missing_ok=True)
        return
    yield from _postgres_restored(backup_path, source_url)


def _postgres_restored(backup_path: Path, source_url: str) -> Iterator[str]:
    name = f"dr_drill_{uuid.uuid4().hex[:12]}"
    admin = engine_for(source_url).execution_options(isolation_level="AUTOCOMMIT")
    scratch_url = make_url(source_url).set(database=name).render_as_string(hide_password=False)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            _run([_pg_tool("pg_restore"), "--no-owner", "--exit-on-error", f"--dbname={_libpq(scratch_url)}",
                  str(backup_path)], "pg_restore")
            yield scratch_url
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
