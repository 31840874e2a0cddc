"""What a database holds, table by table: its row count and a SHA-256 over its rows in primary-key order, read
through SQLAlchemy so that one definition serves SQLite and PostgreSQL. Two databases with equal fingerprints hold
the same rows; a restored append-only table is compared row by row with the live one, which may only have grown."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class TableFingerprint:
    rows: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "sha256": self.sha256}


def engine_for(url: str) -> Engine:
    """An engine for ``url``; a bare ``postgresql://`` URL uses psycopg 3 (the driver this project pins)."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url)


@dataclass(frozen=True)
class _Table:
    """A table's name and the columns it is read in order by: its primary key, else every column."""

    name: str
    columns: list[str]
    order: list[str]

    def select(self, connection: Connection, ordered: bool = True) -> Any:
        quote = connection.dialect.identifier_preparer.quote
        query = f"SELECT {', '.join(map(quote, self.columns))} FROM {quote(self.name)}"
        if ordered:
            query += f" ORDER BY {', '.join(map(quote, self.order))}"
        return connection.execute(text(query))


def _tables(connection: Connection) -> dict[str, _Table]:
    """The database's tables, read as stored (no type conversion: the values as the driver returns them)."""
    inspector = inspect(connection)
    tables = {}
    for name in inspector.get_table_names():
        columns = [column["name"] for column in inspector.get_columns(name)]
        key = inspector.get_pk_constraint(name).get("constrained_columns") or []
        tables[name] = _Table(name, columns, list(key) or columns)
    return tables


def _canonical(values: Any) -> bytes:
    return json.dumps([None if value is None else str(value) for value in values], ensure_ascii=False).encode()


def fingerprint_tables(connection: Connection) -> dict[str, TableFingerprint]:
    """Every table seen through ``connection`` (inside its transaction, so one consistent snapshot), by name."""
    fingerprints = {}
    for name, table in sorted(_tables(connection).items()):
        digest, count = hashlib.sha256(), 0
        for row in table.select(connection):
            digest.update(_canonical(row) + b"\n")
            count += 1
        fingerprints[name] = TableFingerprint(count, digest.hexdigest())
    return fingerprints


def fingerprint_database(url: str) -> dict[str, TableFingerprint]:
    """Every table of the database at ``url``, by name."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return fingerprint_tables(connection)
    finally:
        engine.dispose()


def _row_digests(connection: Connection, table: _Table) -> dict[tuple, str]:
    """Each row's SHA-256 by its primary key (by the whole row when the table has no key)."""
    return {tuple(str(row[name]) for name in table.order): hashlib.sha256(_canonical(row.values())).hexdigest()
            for row in table.select(connection, ordered=False).mappings()}


def rows_not_in_source(restored_url: str, source_url: str, tables: list[str]) -> dict[str, int]:
    """For each of ``tables`` (append-only: rows are only ever added), how many rows of the restored copy the live
    source does not hold identically: a row the source never had, or had with other values."""
    restored, source = engine_for(restored_url), engine_for(source_url)
    try:
        with restored.connect() as copy, source.connect() as live:
            copy_tables, live_tables = _tables(copy), _tables(live)
            differing = {}
            for name in tables:
                if name in copy_tables and name in live_tables:
                    in_source = _row_digests(live, live_tables[name])
                    differing[name] = sum(1 for key, digest in _row_digests(copy, copy_tables[name]).items()
                                          if in_source.get(key) != digest)
            return differing
    finally:
        restored.dispose()
        source.dispose()
