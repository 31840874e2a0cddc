"""A window's SLO series and its plot."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.board.plots import window_plot, window_series
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE

SPEC = load_spec(SPEC_FILE)
RELEASE = {"blue_slot": "green", "profile": "rehearsal"}  # a release after a promotion: green is the blue slot
NOW = datetime(2030, 1, 1, 12, tzinfo=timezone.utc)


class Ranges:
    def __init__(self, failing: str = "") -> None:
        self.asked: list[tuple[str, datetime, datetime, timedelta]] = []
        self.failing = failing

    def query_range(self, promql, start, end, step):
        self.asked.append((promql, start, end, step))
        if self.failing and self.failing in promql:
            raise MetricsUnavailable("Prometheus did not answer")
        return [({}, [(start.timestamp() + i, 0.001 * i) for i in range(5)])]


def _window(step: str, verdict: str = "passed") -> dict:
    return {"step": step, "verdict": verdict, "started_at": (NOW - timedelta(seconds=32)).isoformat(),
            "recorded_at": NOW.isoformat()}


def test_a_traffic_window_asks_greens_slot_over_the_window_and_a_margin():
    provider = Ranges()
    series = window_series(SPEC, RELEASE, _window("step_100"), provider)
    assert [s.name for s in series] == [slo.name for slo in SPEC.analysis.slos]
    promql, start, end, step = provider.asked[0]
    assert 'colour="blue"' in promql and "[10s]" in promql  # the green role lives in the slot named blue now
    assert (start, end, step) == (NOW - timedelta(seconds=42), NOW + timedelta(seconds=10), timedelta(seconds=1))


def test_the_recovery_window_asks_blues_slot_for_the_recovery_slos_only():
    provider = Ranges()
    series = window_series(SPEC, RELEASE, _window("rollback_recovery"), provider)
    assert [s.name for s in series] == list(SPEC.traffic.recovery.slos)
    assert all('colour="green"' in promql for promql, *_ in provider.asked)


def test_a_series_prometheus_did_not_answer_is_drawn_as_no_data(tmp_path):
    series = window_series(SPEC, RELEASE, _window("bake", "failed"), Ranges(failing="histogram_quantile"))
    latency = next(s for s in series if s.name == "p95_latency")
    assert latency.points == [] and "did not answer" in latency.error
    png = window_plot(series, _window("bake", "failed"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "bake.png").write_bytes(png)
