"""A traffic window's SLO series as one small plot per SLO, each with its threshold: asked of Prometheus over the
window (and a little either side) at the release's rate window, for the slot the window watched (green; blue for the
recovery after a rollback). matplotlib's ``Figure`` only (no pyplot), imported when a plot is drawn."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.spec import ReleaseSpec
from sap_llm_release.targets import slots_for
from sap_llm_release.templates import render
from sap_llm_release.timestamps import recorded_time

RECOVERY_STEP = "rollback_recovery"
MARGIN = timedelta(seconds=10)
POINTS = 120  # at most, per series


@dataclass(frozen=True)
class SLOSeries:
    name: str
    threshold: Any  # the spec's Threshold
    points: list[tuple[float, float]]  # (epoch s, value)
    error: str = ""


def window_series(spec: ReleaseSpec, release: dict[str, Any], window: dict[str, Any], provider) -> list[SLOSeries]:
    """Each SLO the window judged, over the window's span: green's SLOs, or the recovery's on blue."""
    recovery = window["step"] == RECOVERY_STEP
    role = "blue" if recovery else "green"
    slos = [slo for slo in spec.analysis.slos if not recovery or slo.name in spec.traffic.recovery.slos]
    variables = {"colour": slots_for(release["blue_slot"])[role], "service": spec.service,
                 "rate_window": spec.rate_window(release["profile"])}
    start = recorded_time(window["started_at"]) - MARGIN
    end = recorded_time(window["recorded_at"]) + MARGIN
    step = timedelta(seconds=max(1, int((end - start).total_seconds() / POINTS)))
    series = []
    for slo in slos:
        try:
            answer = provider.query_range(render(slo.query, **variables), start, end, step)
            series.append(SLOSeries(slo.name, slo.threshold, answer[0][1] if answer else []))
        except MetricsUnavailable as exc:
            series.append(SLOSeries(slo.name, slo.threshold, [], str(exc)))
    return series


def window_plot(series: list[SLOSeries], window: dict[str, Any]) -> bytes:
    """One PNG: a panel per SLO, its threshold dashed in red, the window's span shaded by its verdict."""
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 2.2), dpi=100, layout="constrained")
    axes = figure.subplots(1, max(1, len(series)), squeeze=False)[0]
    start, end = (recorded_time(window[key]) for key in ("started_at", "recorded_at"))
    shade = "#2ca02c" if window["verdict"] == "passed" else "#d62728"
    for ax, slo in zip(axes, series, strict=False):
        ax.axvspan(start, end, color=shade, alpha=0.08)
        if slo.points:
            ax.plot([datetime.fromtimestamp(t, start.tzinfo) for t, _ in slo.points], [v for _, v in slo.points],
                    color="#1f77b4", linewidth=1.2)
        else:
            ax.text(0.5, 0.5, "no data" + (f"\n{slo.error[:60]}" if slo.error else ""), ha="center", va="center",
                    transform=ax.transAxes, color="#777", fontsize=8)
        ax.axhline(slo.threshold.value, color="#d62728", linestyle="--", linewidth=1)
        ax.set_title(f"{slo.name} ({slo.threshold})", fontsize=8)
        ax.tick_params(labelsize=6)
        ax.xaxis.set_major_locator(AutoDateLocator(minticks=2, maxticks=4))
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
