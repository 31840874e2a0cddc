"""Waiting for alerts to clear before traffic moves (the spec's ``analysis.clear_before_traffic``): no release
deploys green or shifts its first traffic into an incident already under way.

The alerts are asked every interval until none fires (passed) or the wait is over (refused, naming the alerts still
firing, or saying that Prometheus did not answer: an unanswered question never clears). The tally has the shape of
an SLO window's, so the ledger keeps each wait as a window at 0 %.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.analysis.window import SLOTally

FIRING_ALERTS = "firing_alerts"
_NOT_IDENTIFYING = {"__name__", "alertname", "alertstate"}


class AlertSource(Protocol):
    async def series(self, promql: str) -> list[dict[str, str]]:
        """The label sets of the instant vector ``promql`` selects (MetricsUnavailable when not answered)."""


@dataclass(frozen=True)
class ClearOutcome:
    passed: bool
    reason: str
    firing: list[str]
    tally: SLOTally


def alert_name(labels: Mapping[str, str]) -> str:
    """``SapLlmHighErrorRate{colour="green", severity="critical"}``: the alert and the labels that tell it apart."""
    shown = ", ".join(f'{key}="{value}"' for key, value in sorted(labels.items()) if key not in _NOT_IDENTIFYING)
    return f"{labels.get('alertname', '?')}{{{shown}}}"


async def wait_until_clear(source: AlertSource, alerts: str, *, wait_s: float, interval_s: float,
                           clock: Callable[[], float] = time.monotonic,
                           sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> ClearOutcome:
    """Ask ``alerts`` now and every ``interval_s`` (the last time at ``wait_s``) until none fires."""
    tally = SLOTally(FIRING_ALERTS, "== 0")
    started = clock()
    while True:
        firing = await _ask(source, alerts, tally)
        waited = clock() - started
        if firing == []:
            return ClearOutcome(True, f"no alert firing ({alerts}) at check {tally.checks}, after {waited:.0f} s",
                                [], tally)
        if waited >= wait_s:
            seen = (f"still firing: {', '.join(firing)}" if firing is not None
                    else f"Prometheus did not answer: {tally.last_error}")
            return ClearOutcome(False, f"refusing to move traffic into an incident: after {tally.checks} checks "
                                       f"over {waited:.0f} s (waiting at most {wait_s:.0f} s), {seen}",
                                firing or [], tally)
        await sleep(min(interval_s, wait_s - waited))


async def _ask(source: AlertSource, alerts: str, tally: SLOTally) -> list[str] | None:
    """The alerts firing now (None when Prometheus did not answer), counted in ``tally``."""
    tally.checks += 1
    try:
        firing = sorted(alert_name(labels) for labels in await source.series(alerts))
    except MetricsUnavailable as exc:
        tally.no_data += 1
        tally.failures += 1
        tally.last_error = str(exc)
        return None
    tally.last, tally.last_error = float(len(firing)), ""
    tally.worst = max(tally.worst or 0.0, tally.last)
    if firing:
        tally.failures += 1
    return firing
