"""The trigger behind the SLO window sensor: polls Prometheus in the triggerer, holding no worker slot.

It only reads metrics (no side effects), so running it again after a triggerer restart is safe: the window end is
absolute, the failure counts start again. It yields one event and returns; the sensor's resume method records it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from sap_llm_release.analysis.window import SLOQuery, WindowAnalysis


class SLOWindowTrigger(BaseTrigger):
    def __init__(
        self,
        prometheus_url: str,
        slos: list[dict[str, Any]],
        failure_limit: int,
        interval_s: float,
        window_end: str,
        window_start: str = "",
        **_unknown: Any,  # kwargs of older versions, so triggers saved before an upgrade still load
    ) -> None:
        super().__init__()
        self.prometheus_url = prometheus_url
        self.slos = slos
        self.failure_limit = failure_limit
        self.interval_s = interval_s
        self.window_end = window_end
        self.window_start = window_start

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "prometheus_url": self.prometheus_url,
                "slos": self.slos,
                "failure_limit": self.failure_limit,
                "interval_s": self.interval_s,
                "window_end": self.window_end,
                "window_start": self.window_start,
            },
        )

    async def run(self):
        from sap_llm_release.analysis.prometheus import PrometheusProvider

        provider = PrometheusProvider(self.prometheus_url)
        analysis = WindowAnalysis([SLOQuery(**slo) for slo in self.slos], self.failure_limit)
        end = datetime.fromisoformat(self.window_end)
        while True:
            remaining = (end - datetime.now(timezone.utc)).total_seconds()
            await asyncio.sleep(max(0.0, min(self.interval_s, remaining)))
            await asyncio.to_thread(analysis.observe, provider)
            window_over = datetime.now(timezone.utc) >= end
            if outcome := analysis.outcome(window_over):
                status, reason = outcome
                yield TriggerEvent(
                    {
                        "status": status,
                        "reason": reason,
                        "checks": analysis.summary(),
                        "window_start": self.window_start,
                        "window_end": self.window_end,
                    }
                )
                return
