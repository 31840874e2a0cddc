"""Times as the ledger gives them back: a datetime on PostgreSQL, ISO 8601 text on SQLite."""

from __future__ import annotations

from datetime import datetime, timezone


def recorded_time(value: datetime | str) -> datetime:
    """A ledger time in UTC (a time stored without a zone is UTC, as the ledger writes every time)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
