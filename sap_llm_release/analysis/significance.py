"""Whether a ratio SLO's breach is evidence or noise: a one-sided exact binomial test of the bad events counted
against the share the bound allows. Two errors among ninety requests read 2.2 % against a 1 % bound, yet a service
failing 1 % of its requests shows two or more of them in ninety 23 % of the time: no reason to roll back. Exact
arithmetic rather than scipy (one function, forty megabytes)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed exactly in log space from ``k`` up, stopping once the terms no
    longer count."""
    if k <= 0 or p >= 1.0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * log_p + (n - i) * log_q)
        total += term
        if i > n * p and term < total * 1e-16:
            break
    return min(1.0, total)


@dataclass(frozen=True)
class CountedBreach:
    """``bad`` of ``events`` against the ``share`` a bound allows, and the chance of as many at that share."""

    bad: int
    events: int
    share: float
    p_value: float

    @classmethod
    def of(cls, bad: float, events: float, share: float) -> CountedBreach:
        """Counts from Prometheus' ``increase()`` (extrapolated, so fractional) rounded to whole events."""
        bad_events, all_events = round(bad), round(events)
        return cls(bad_events, all_events, share, binomial_tail(bad_events, all_events, share))

    def significant(self, confidence: float) -> bool:
        """Whether this many bad events are too many for the allowed share at ``confidence``."""
        return self.p_value < 1.0 - confidence

    def __str__(self) -> str:
        return (f"{self.bad} bad of {self.events} events, p={self.p_value:.3g} at an allowed share of "
                f"{self.share:g}")


class BadEventCounts(BaseModel):
    """What a ratio's value rests on, counted: ``bad`` and all ``events`` (PromQL templates, ``increase()`` over the
    same window as the value), and the ``share`` of bad events its threshold allows. A value past the threshold is a
    breach only where that many bad events are too many for the share at ``confidence``: 2 errors among 90 requests
    read 2.2 % against a 1 % threshold, and are noise. Counts without data leave the plain threshold to judge. Each
    user validates the templates' variables against its own."""

    model_config = ConfigDict(extra="forbid")

    bad: str = Field(min_length=1)
    events: str = Field(min_length=1)
    share: float = Field(gt=0.0, lt=1.0)
    confidence: float = Field(ge=0.5, lt=1.0)

    def judge(self, bad: float | None, events: float | None) -> CountedBreach | None:
        """The counted breach, or None where either count has no data."""
        return None if bad is None or events is None else CountedBreach.of(bad, events, self.share)
