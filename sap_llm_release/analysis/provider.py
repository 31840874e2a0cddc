"""The metrics provider interface: one PromQL query in, one number (or no data) out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MetricsUnavailable(RuntimeError):
    """The metrics backend could not be asked or gave an answer that cannot be read."""


class MetricsProvider(Protocol):
    def query(self, promql: str) -> float | None:
        """Return the query's single value now, or ``None`` when it has no data.

        Raises :class:`MetricsUnavailable` when the backend is unreachable or the answer is malformed
        (for example several series where one was expected).
        """


class AsyncMetricsProvider(Protocol):
    async def query_many(self, promqls: Sequence[str]) -> list[tuple[float | None, str]]:
        """Each query's single value now (None: no data) and the error that kept it from one (``""`` when none),
        awaited together: a window asks all its queries at once. Never raises for one query's failure."""
