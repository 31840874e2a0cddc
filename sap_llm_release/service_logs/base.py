"""The log source interface: the service's log lines stamped within a period, by process or pod."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class LogsUnavailable(RuntimeError):
    """The logs could not be read (no log files, an API that did not answer)."""


class LogSource(Protocol):
    def describe(self) -> str:
        """Where the logs are read, for a finding's detail."""

    def lines(self, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, str]]]:
        """Per process or pod, its log lines stamped within ``[start, end)`` (UTC) with their times, oldest first;
        a line with no time of its own (a traceback's continuation) has the time of the stamped line before it.
        Raises :class:`LogsUnavailable` when the logs cannot be read."""
