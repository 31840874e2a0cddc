"""A data store asked with SQL: the knowledge base (SAP APIs, field mappings, business rules, transformations) and
the process memory graph (historical documents, their embeddings and relationships) answer one read-only query
each, through their store's connection (any SQLAlchemy URL: SQLite for the rehearsal's stores, PostgreSQL, ...).

``measure: value`` takes the query's single value (a count or a ratio; no row, NULL or a non-number fails);
``measure: p95_ms`` runs the query ``repeat`` times and takes the 95th percentile of its latency in milliseconds,
failing when any run fails or returns nothing."""

from __future__ import annotations

import math
import re
import sqlite3
import statistics
import time
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from sap_llm_release.checks.base import Check, CheckContext, CheckUnavailable, Params
from sap_llm_release.evidence import Evidence, Threshold

_READ_ONLY = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


class StoreQueryParams(Params):
    store: Literal["knowledge_base", "process_memory_graph"]
    sql: str = Field(min_length=8, description="one read-only SELECT answering one value")
    measure: Literal["value", "p95_ms"] = "value"
    repeat: int = Field(default=20, ge=5, le=1000, description="runs timed when measure is p95_ms")
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("sql")
    @classmethod
    def _read_only(cls, sql: str) -> str:
        if not _READ_ONLY.match(sql) or ";" in sql.rstrip().rstrip(";"):
            raise ValueError("must be a single SELECT (or WITH ... SELECT) statement: gates only read the stores")
        return sql


class StoreQuery(Check):
    """Measured: the query's value, or its p95 latency in milliseconds."""

    Params = StoreQueryParams

    def run(self, params: StoreQueryParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.services.get(params.store)
        if not url:
            raise CheckUnavailable(f"no {params.store} store is configured for this target")
        shown = make_url(url).render_as_string(hide_password=True)
        engine = _engine(url, params.timeout_s)
        try:
            with engine.connect() as connection:
                runs = params.repeat if params.measure == "p95_ms" else 1
                latencies_ms, value = [], None
                for _ in range(runs):
                    started = time.perf_counter()
                    value = connection.execute(text(params.sql)).scalar()
                    latencies_ms.append((time.perf_counter() - started) * 1000)
                connection.rollback()  # nothing a query did is kept
        except SQLAlchemyError as exc:
            reason = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
            return Evidence.unmeasured(threshold, f"{params.store} query failed: {reason}", shown)
        finally:
            engine.dispose()
        if isinstance(value, Decimal):
            value = float(value)
        if not _is_number(value):
            return Evidence.unmeasured(threshold,
                            f"{params.store} query answered {value!r}, not a number", shown)
        if params.measure == "value":
            return Evidence.compare(value, threshold, f"{params.store}: {_one_line(params.sql)}", evidence_uri=shown)
        p95 = round(statistics.quantiles(latencies_ms, n=20)[18], 2)
        detail = (f"{params.store}: {runs} runs, median {statistics.median(latencies_ms):.2f} ms, p95 {p95} ms "
                  f"(last answer {value}): {_one_line(params.sql)}")
        return Evidence.compare(p95, threshold, detail, evidence_uri=shown)


def _engine(url: str, timeout_s: float) -> Engine:
    """An engine that only reads and waits at most ``timeout_s``: SQLite files are opened read-only (a missing file
    is an error, not a new empty store); PostgreSQL sessions are read-only with a statement timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database).resolve()
        return create_engine("sqlite://", creator=lambda: sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True,
                                                                          timeout=timeout_s))
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, connect_args={
            "connect_timeout": max(1, math.ceil(timeout_s)),
            "options": f"-c statement_timeout={int(timeout_s * 1000)} -c default_transaction_read_only=on"})
    return create_engine(url)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())
