"""SLO analysis over one traffic window: count failures per SLO and decide pass or fail.

A step fails as soon as any SLO has ``failure_limit`` failed checks, or at once when a check breaches an SLO's
severe bound. Under the ``fail`` no-data policy a check
without data is a failed check; under ``inconclusive`` it counts neither way, but an SLO that had no data in the
whole window fails the window at its end. Missing data never passes a step. Probes (green's readiness endpoint,
asked directly) are counted like SLO checks, each interval, ahead of the SLOs. Each interval's probes and queries are
asked at the same time, the queries in one request: a triggerer runs many windows in one event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sap_llm_release.analysis.provider import AsyncMetricsProvider
from sap_llm_release.analysis.significance import CountedBreach
from sap_llm_release.evidence import Threshold


@dataclass(frozen=True)
class SLOQuery:
    """A rendered SLO, ready to be asked: plain data so a trigger can serialize it."""

    name: str
    promql: str
    op: str
    threshold: float
    no_data: str = "fail"
    severe_op: str = ""  # a severe bound's: breached, the window fails at once (none: failure_limit decides)
    severe_threshold: float | None = None
    severe_promql: str = ""  # what the severe bound is judged on (the query over the severe rate window)
    severe_events_promql: str = ""  # how many events back that value; fewer than severe_min_events judge nothing
    severe_min_events: float = 0.0
    counts_bad_promql: str = ""  # the bad events a breach rests on, and all of them: a breach they do not make
    counts_events_promql: str = ""  # significant at counts_confidence (counts_share allowed) is noise, not a failure
    counts_share: float = 0.0
    counts_confidence: float = 0.0

    def extra_promqls(self) -> list[str]:
        """The queries asked with this SLO's own: its severe value and events, then its bad-event counts."""
        severe = [self.severe_promql, self.severe_events_promql] if self.severe_promql else []
        return severe + ([self.counts_bad_promql, self.counts_events_promql] if self.counts_bad_promql else [])

    @property
    def bound(self) -> Threshold:
        return Threshold(op=self.op, value=self.threshold)

    @property
    def severe_bound(self) -> Threshold | None:
        return Threshold(op=self.severe_op, value=self.severe_threshold) if self.severe_op else None


class Probe(Protocol):
    """A check asked directly rather than through the metrics provider (e.g. green's readiness endpoint)."""

    @property
    def slo(self) -> SLOQuery:
        """Its name and the bound its value must meet."""

    async def check_async(self) -> tuple[float | None, str]:
        """Its value now and what was seen."""


@dataclass
class SLOTally:
    name: str
    threshold: str
    checks: int = 0
    failures: int = 0
    no_data: int = 0
    last: float | None = None
    worst: float | None = None
    last_error: str = ""
    severe: str = ""  # the severe bound and the value that breached it, once one did
    within_noise: int = 0  # checks past the threshold whose bad-event counts were not significant
    last_noise: str = ""


@dataclass
class WindowAnalysis:
    slos: list[SLOQuery]
    failure_limit: int
    tallies: dict[str, SLOTally] = field(default_factory=dict)
    probes: list[Probe] = field(default_factory=list)

    def __post_init__(self) -> None:
        for slo in [probe.slo for probe in self.probes] + self.slos:
            self.tallies.setdefault(slo.name, SLOTally(slo.name, str(slo.bound)))

    async def observe(self, provider: AsyncMetricsProvider) -> None:
        """Ask every probe and every SLO once, all at the same time, and count the answers (probes first)."""
        extra = [query for slo in self.slos for query in slo.extra_promqls()]
        probed = asyncio.gather(*(probe.check_async() for probe in self.probes))
        probes, answers = await asyncio.gather(probed, provider.query_many(
            [slo.promql for slo in self.slos] + extra))
        for probe, (value, seen) in zip(self.probes, probes, strict=True):
            met = value is not None and probe.slo.bound.met_by(value)
            self.record(probe.slo, value, "" if met else seen)
        values = iter(value for value, _ in answers[len(self.slos):])
        for slo, (value, error) in zip(self.slos, answers[:len(self.slos)], strict=True):
            severe = (next(values), next(values)) if slo.severe_promql else (None, None)
            counts = (next(values), next(values)) if slo.counts_bad_promql else (None, None)
            self.record(slo, value, error, *severe, counts=counts)

    def record(self, slo: SLOQuery, value: float | None, error: str = "", severe_value: float | None = None,
               severe_events: float | None = None, counts: tuple[float | None, float | None] = (None, None)) -> None:
        """Count one answer; the severe bound judges ``severe_value`` backed by ``severe_events`` events (at least
        the SLO's minimum) where the SLO has a severe query, else ``value``; a breach of the threshold whose ``counts``
        (bad, all events) are not significant is noise, not a failure."""
        tally = self.tallies[slo.name]
        if (severe := slo.severe_bound) is not None:
            judged = severe_value if slo.severe_promql else value
            backed = not slo.severe_events_promql or (severe_events or 0.0) >= slo.severe_min_events
            if judged is not None and backed and not severe.met_by(judged):
                tally.severe = f"{severe} breached by {judged:g}" + (
                    f" over {severe_events:g} events" if slo.severe_events_promql else "")
        tally.checks += 1
        tally.last_error = error
        if value is None:
            tally.no_data += 1
            if slo.no_data == "fail":
                tally.failures += 1
            return
        tally.last = value
        if tally.worst is None or _more_adverse(slo, value, tally.worst):
            tally.worst = value
        if slo.bound.met_by(value):
            return
        if (noise := _noise(slo, *counts)) is not None:
            tally.within_noise += 1
            tally.last_noise = f"{value:g} within noise: {noise}"
            return
        tally.failures += 1

    def breached(self) -> SLOTally | None:
        """The first SLO breached severely, else the first whose failures reached the limit, if any."""
        return next((t for t in self.tallies.values() if t.severe), None) or next(
            (t for t in self.tallies.values() if t.failures >= self.failure_limit), None)

    def never_measured(self) -> list[str]:
        return [t.name for t in self.tallies.values() if t.checks and t.checks == t.no_data]

    def outcome(self, window_over: bool) -> tuple[str, str] | None:
        """``("failed"|"passed", reason)`` once decided, else ``None`` while the window runs."""
        if tally := self.breached():
            measured = "no data" if tally.worst is None else tally.worst
            limit = f"severe bound {tally.severe}" if tally.severe else f"limit {self.failure_limit}"
            reason = (
                f"SLO {tally.name} failed {tally.failures} of {tally.checks} checks "
                f"({limit}); worst {measured}, threshold {tally.threshold}"
            )
            if tally.last_error:
                reason += f"; last error: {tally.last_error}"
            return "failed", reason
        if not window_over:
            return None
        if missing := self.never_measured():
            return "failed", f"SLOs {', '.join(missing)} had no data in the whole window"
        if not any(t.checks for t in self.tallies.values()):
            return "failed", "the window ended before any check ran"
        noisy = [f"{t.name} {t.within_noise} of {t.checks} ({t.last_noise})" for t in self.tallies.values()
                 if t.within_noise]
        return "passed", "all SLOs met over the window" + (
            f"; checks past the threshold within noise: {'; '.join(noisy)}" if noisy else "")

    def summary(self) -> list[dict[str, Any]]:
        return [asdict(tally) for tally in self.tallies.values()]


def _noise(slo: SLOQuery, bad: float | None, events: float | None) -> CountedBreach | None:
    """The counts behind a breach where they are too few to call it one, else None (counts without data, or
    significant: the breach stands)."""
    if not slo.counts_bad_promql or bad is None or events is None:
        return None
    counted = CountedBreach.of(bad, events, slo.counts_share)
    return None if counted.significant(slo.counts_confidence) else counted


def _more_adverse(slo: SLOQuery, value: float, worst: float) -> bool:
    """True when ``value`` is further towards (or past) the wrong side of the bound than ``worst``."""
    if slo.op in ("<", "<="):
        return value > worst
    if slo.op in (">", ">="):
        return value < worst
    return abs(value - slo.threshold) > abs(worst - slo.threshold)
