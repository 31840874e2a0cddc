"""The recorded history the audit tests judge: written, backfilled and served by a real Prometheus, it reads as healthy
except where a problem was injected, and there it reads as injected."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from sap_llm_release.rehearsal.history import (
    AlertFired,
    ErrorSpike,
    GpuUnderuse,
    Healthy,
    LatencyRegression,
    ThroughputDip,
    backfill,
    history_start,
    prometheus_over,
    write_openmetrics,
)
from sap_llm_release.rehearsal.processes import free_port

DAYS = 4
ERROR_RATIO = 'sum(rate(sap_llm_requests_total{status=~"5.."}[1h])) / sum(rate(sap_llm_requests_total[1h]))'
P95 = "histogram_quantile(0.95, sum by (le) (rate(sap_llm_request_duration_seconds_bucket[1h])))"
DOCS_PER_HOUR = "sum(rate(sap_llm_documents_processed_total[1h])) * 3600"
GPU = "avg(DCGM_FI_DEV_GPU_UTIL)"
TOUCHLESS = "sum(rate(sap_llm_touchless_total[1h])) / sum(rate(sap_llm_documents_processed_total[1h]))"
WEB_SEARCHES = "sum(rate(sap_llm_web_search_requests_total[1h])) / sum(rate(sap_llm_documents_processed_total[1h]))"
ALERT = AlertFired(day=1, start_hour=10.5, minutes=30, alertname="SapLlmHighErrorRate", severity="critical")
PROBLEMS = (
    ErrorSpike(day=1, hours=(10, 14), error_ratio=0.05),
    ALERT,
    LatencyRegression(day=2, hours=(8, 12), p95_s=2.0),
    ThroughputDip(day=2, hours=(14, 18), docs_per_hour=3000),
    GpuUnderuse(days=(3, 3), utilisation_pct=30),
)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """The OpenMetrics file and the start of four days of history with ``PROBLEMS`` on days 1 to 3 (day 0 healthy)."""
    start = history_start(DAYS)
    path = write_openmetrics(tmp_path_factory.mktemp("history") / "history.om", start=start, days=DAYS, step_s=60,
                             problems=PROBLEMS)
    return path, int(start.timestamp())


@pytest.fixture(scope="module")
def prometheus(history):
    path, start_ts = history
    with prometheus_over(backfill(path, path.parent / "tsdb"), free_port()) as url:
        yield url, start_ts


def instant(url: str, query: str, at: int) -> list[dict]:
    response = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": at}, timeout=10)
    response.raise_for_status()
    return response.json()["data"]["result"]


def value(url: str, query: str, at: int) -> float:
    """The query's one value at ``at``."""
    (sample,) = instant(url, query, at)
    return float(sample["value"][1])


def hourly(url: str, query: str, day_start: int) -> dict[int, float]:
    """The query at each full hour 1:00 to 24:00 of the day: hour -> value."""
    params = {"query": query, "start": day_start + 3600, "end": day_start + 86400, "step": 3600}
    response = httpx.get(f"{url}/api/v1/query_range", params=params, timeout=10)
    response.raise_for_status()
    (series,) = response.json()["data"]["result"]
    return {(int(ts) - day_start) // 3600: float(sample) for ts, sample in series["values"]}


def test_history_start_is_whole_days_ending_at_todays_midnight():
    now = datetime(2026, 3, 10, 15, 42, tzinfo=timezone.utc)
    assert history_start(30, now) == datetime(2026, 2, 8, tzinfo=timezone.utc)


def test_the_file_is_openmetrics_promtool_accepts(history):
    path, _ = history
    text = path.read_text()
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert text.endswith("\n# EOF\n")
    assert len(families) == len(set(families)) == 8
    blocks = list(backfill(path, path.parent / "accepted").glob("*/meta.json"))
    assert blocks


def test_promtool_refusal_is_reported_with_its_reason(tmp_path):
    (tmp_path / "broken.om").write_text("# TYPE up gauge\nup 1 100\nup 1 50\n")  # no # EOF
    with pytest.raises(RuntimeError, match="promtool could not backfill .*EOF"):
        backfill(tmp_path / "broken.om", tmp_path / "tsdb")


@pytest.mark.parametrize("day", [0, 1, 2, 3])
def test_healthy_days_are_within_the_slos_at_noon(prometheus, day):
    url, start_ts = prometheus
    noon = start_ts + 86400 * day + 12 * 3600
    if day != 1:
        assert value(url, ERROR_RATIO, noon) < 0.01
    if day != 2:
        assert 0.3 < value(url, P95, noon) < 1.5
        assert value(url, DOCS_PER_HOUR, noon) > 5000
    if day != 3:
        assert 60 <= value(url, GPU, noon) <= 80
    assert value(url, TOUCHLESS, noon) == pytest.approx(0.9, abs=0.01)
    assert value(url, WEB_SEARCHES, noon) == pytest.approx(0.005, rel=0.05)
    assert value(url, "avg_over_time(up[1d])", noon + 12 * 3600 - 1) == 1


def test_error_spike_shows_in_its_hours_only(prometheus):
    url, start_ts = prometheus
    by_hour = hourly(url, ERROR_RATIO, start_ts + 86400)
    assert all(by_hour[hour] == pytest.approx(0.05, rel=0.1) for hour in range(11, 15))
    assert all(ratio < 0.01 for hour, ratio in by_hour.items() if hour not in range(11, 15))
    assert all(ratio < 0.01 for day in (0, 2, 3) for ratio in hourly(url, ERROR_RATIO, start_ts + 86400 * day).values())


def test_latency_regression_reads_as_the_injected_p95(prometheus):
    url, start_ts = prometheus
    by_hour = hourly(url, P95, start_ts + 2 * 86400)
    assert all(by_hour[hour] == pytest.approx(2.0, rel=0.05) for hour in range(9, 13))
    assert all(p95 < 1.5 for hour, p95 in by_hour.items() if hour not in range(9, 13))
    assert all(p95 == pytest.approx(0.4, rel=0.1) for p95 in hourly(url, P95, start_ts).values())


def test_throughput_dip_shows_in_its_hours_only(prometheus):
    url, start_ts = prometheus
    by_hour = hourly(url, DOCS_PER_HOUR, start_ts + 2 * 86400)
    assert all(by_hour[hour] == pytest.approx(3000, rel=0.03) for hour in range(15, 19))
    assert all(docs > 5000 for hour, docs in by_hour.items() if hour not in range(15, 19))


def test_gpu_underuse_covers_its_days_only(prometheus):
    url, start_ts = prometheus
    # a second before the next midnight: the day's samples, not the one at the midnight before
    daily = {day: value(url, "avg_over_time(DCGM_FI_DEV_GPU_UTIL[1d])", start_ts + 86400 * (day + 1) - 1)
             for day in range(DAYS)}
    assert daily[3] == pytest.approx(30)
    assert all(60 <= daily[day] <= 80 for day in (0, 1, 2))


def test_alert_is_firing_exactly_within_its_interval(prometheus):
    url, start_ts = prometheus
    selector = f'ALERTS{{alertname="{ALERT.alertname}",alertstate="firing",severity="critical",job="sap-llm"}}'
    (series,) = instant(url, f"{selector}[1d]", start_ts + 2 * 86400)
    begin = start_ts + 86400 + int(10.5 * 3600)
    end = begin + 30 * 60
    assert [int(ts) for ts, _ in series["values"]] == list(range(begin, end + 60, 60))
    assert {sample for ts, sample in series["values"] if ts < end} == {"1"} and series["values"][-1][1] == "NaN"
    firing = instant(url, f"{selector} == 1", end + 120)
    assert firing == [], "the NaN after the interval ends it, as a staleness marker does"
    assert all(not instant(url, f"{selector}[1d]", start_ts + 86400 * day) for day in (1, 3, 4))


def test_the_service_log_has_one_error_line_per_failed_document_in_its_hour(tmp_path):
    from sap_llm_release.rehearsal.history import write_service_log
    from sap_llm_release.service_logs.local_files import line_time

    start = history_start(2)
    spike = ErrorSpike(day=1, hours=(10, 12), error_ratio=0.05)
    lines = write_service_log(tmp_path / "blue.log", start=start, days=2, problems=[spike]).read_text().splitlines()
    errors_by_hour: dict[int, int] = {}
    for line in lines:
        if " ERROR " in line:
            hour = int((line_time(line) - start).total_seconds() // 3600)
            errors_by_hour[hour] = errors_by_hour.get(hour, 0) + 1
    assert [errors_by_hour[hour] for hour in (34, 35)] == [round(Healthy().hour(hour).docs_per_hour * 0.05)
                                                           for hour in (34, 35)]
    assert all(5 <= count <= 15 for hour, count in errors_by_hour.items() if hour not in (34, 35))
    assert len(lines) - sum(errors_by_hour.values()) == 2 * 24 * 60  # one summary line a minute
    assert [line_time(line) for line in lines] == sorted(line_time(line) for line in lines)
