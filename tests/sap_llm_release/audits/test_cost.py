"""The cost model against a real Prometheus over recorded history: three replicas of blue for three days (day 0
healthy, day 1 with a long throughput dip, day 2 processing nothing), priced with the spec's Appendix C prices; and
the spec's ``costs`` section, validated like the rest."""

from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.audits.cost import CostModel, Usage, read_usage
from sap_llm_release.audits.kinds import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.rehearsal.history import (
    Healthy,
    ThroughputDip,
    backfill,
    documents_processed,
    history_start,
    prometheus_over,
    write_openmetrics,
)
from sap_llm_release.spec import SpecError, parse_spec
from tests.sap_llm_release.conftest import find_free_port

DAYS = 3
HEALTHY = Healthy(replicas=3)
PROBLEMS = (ThroughputDip(day=1, hours=(2, 24), docs_per_hour=1500),
            ThroughputDip(day=2, hours=(0, 24), docs_per_hour=0))
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A Prometheus over the history and the history's start."""
    start = history_start(DAYS)
    path = write_openmetrics(tmp_path_factory.mktemp("cost") / "history.om", start=start, days=DAYS, step_s=60,
                             problems=PROBLEMS, healthy=HEALTHY)
    with prometheus_over(backfill(path, path.parent / "tsdb"), find_free_port()) as url:
        yield url, start


@pytest.fixture(scope="module")
def check(spec):
    return spec.audits.daily.check("cost_per_document")


def documents(first_hour: int, hours: int) -> float:
    """The documents the history processed in those hours."""
    return sum(documents_processed(DAYS, PROBLEMS, HEALTHY)[first_hour:first_hour + hours])


def by_hand(costs: CostModel, documents: float, hours: float) -> float:
    """USD per document: three GPU nodes by the hour, the monthly services over 730 h a month, web search by call."""
    monthly = costs.monthly
    fixed = (monthly.cosmos_db + monthly.redis + monthly.mongodb + monthly.monitoring + monthly.storage) * hours / 730
    searches = documents * HEALTHY.web_searches_per_document * costs.web_search_query
    return (HEALTHY.replicas * hours * costs.gpu_node_hour + fixed + searches) / documents


def audit(history, check, start_day: int, days: int, service: str = "sap-llm"):
    url, start = history
    begin = start + start_day * DAY
    context = AuditContext(service=service, period_start=begin, period_end=begin + days * DAY, step=HOUR,
                           metrics=PrometheusProvider(url))
    return judge(check, context)


def test_a_healthy_day_costs_what_its_usage_and_the_prices_give(history, check):
    finding = audit(history, check, 0, 1)
    costs = check.check_params.costs
    expected = by_hand(costs, documents(0, 24), 24)
    assert finding.severity is Severity.OK
    assert finding.measured == pytest.approx(expected, rel=2e-3)
    assert sum(finding.breakdown.values()) == pytest.approx(finding.measured, rel=1e-4)
    assert finding.breakdown["gpu_nodes"] == pytest.approx(3 * 24 * costs.gpu_node_hour / documents(0, 24), rel=2e-3)
    assert finding.breakdown["web_search"] == pytest.approx(
        HEALTHY.web_searches_per_document * costs.web_search_query, rel=0.05)
    counted = re.search(r"([\d,]+) documents, ([\d.]+) replica-hours", finding.detail)
    assert float(counted[1].replace(",", "")) == pytest.approx(documents(0, 24), abs=1)
    assert float(counted[2]) == pytest.approx(3 * 24, rel=2e-3)  # Prometheus 2's subquery holds both ends


def test_a_throughput_dip_raises_the_cost_per_document_in_its_hours(history, check):
    finding = audit(history, check, 1, 1)
    costs = check.check_params.costs
    assert finding.measured == pytest.approx(by_hand(costs, documents(24, 24), 24), rel=2e-3)
    assert finding.severity is Severity.WARNING  # past $0.005, short of the critical $0.0075
    (series,) = finding.series
    hourly = {round((at - series.points[0][0]) / 3600) + 1: usd for at, usd in series.points}
    assert len(hourly) == 24 and series.bounds == {"warning": 0.005, "critical": 0.0075}
    assert all(hourly[hour] == pytest.approx(by_hand(costs, documents(23 + hour, 1), 1), rel=0.02)
               for hour in hourly)
    assert min(hourly[hour] for hour in range(4, 25)) > 3 * max(hourly[1], hourly[2])


def test_a_longer_period_is_judged_over_all_of_it_with_a_point_per_day(history, check):
    finding = audit(history, check, 0, 2)
    costs = check.check_params.costs
    assert finding.measured == pytest.approx(by_hand(costs, documents(0, 48), 48), rel=2e-3)
    (series,) = finding.series
    assert [usd for _, usd in series.points] == pytest.approx(
        [by_hand(costs, documents(0, 24), 24), by_hand(costs, documents(24, 24), 24)], rel=2e-3)


def test_a_day_without_documents_is_no_data_never_ok(history, check):
    finding = audit(history, check, 2, 1)
    assert (finding.measured, finding.severity) == (None, Severity.CRITICAL)
    assert finding.detail.startswith("no data: 0 documents, 72.0")


def test_a_service_prometheus_has_no_series_of_is_no_data(history, check):
    finding = audit(history, check, 0, 1, service="sap-llm-nowhere")
    assert (finding.measured, finding.severity) == (None, Severity.CRITICAL)
    assert 'no document or pod series match {job="sap-llm-nowhere"}' in finding.detail


def test_a_window_of_seconds_counts_replicas_second_by_second(history, check):
    """A window that is no whole number of minutes (a rehearsal's rate window) steps its subquery by the second."""
    url, start = history
    window = timedelta(seconds=90)
    end = start + 12 * HOUR + window
    usage = read_usage(PrometheusProvider(url), check.check_params.costs.usage, 'job="sap-llm"', end - window, end)
    assert usage.replica_hours == pytest.approx(3 * 90 / 3600, rel=0.02)
    assert usage.documents == pytest.approx(documents(12, 1) * 90 / 3600, rel=0.1)


def test_a_service_without_a_web_search_counter_counts_no_calls_and_says_so(history, check):
    url, start = history
    costs = check.check_params.costs
    queries = costs.usage.model_copy(update={"web_search_calls": "sum(increase(sap_llm_no_such_total{$selector}"
                                                                 "[$period]))"})
    usage = read_usage(PrometheusProvider(url), queries, 'job="sap-llm"', start, start + DAY)
    assert usage.web_search_calls is None
    assert costs.breakdown(usage).usd["web_search"] == 0
    assert "no web-search series (counted as 0 calls)" in usage.describe()


def test_an_unreachable_prometheus_raises_metrics_unavailable_and_the_finding_is_critical(check):
    url = f"http://127.0.0.1:{find_free_port()}"
    end = datetime.now(timezone.utc)
    with pytest.raises(MetricsUnavailable):
        read_usage(PrometheusProvider(url, timeout_s=1), check.check_params.costs.usage, 'job="x"', end - DAY, end)
    context = AuditContext(service="sap-llm", period_start=end - DAY, period_end=end, step=HOUR,
                           metrics=PrometheusProvider(url, timeout_s=1))
    finding = judge(check, context)
    assert (finding.measured, finding.severity) == (None, Severity.CRITICAL)
    assert "Prometheus could not be asked" in finding.detail


def test_breakdown_prorates_monthly_prices_and_has_no_cost_per_document_without_documents(check):
    costs = check.check_params.costs
    month = costs.breakdown(Usage(documents=0, replica_hours=3 * 730, web_search_calls=None, hours=730))
    assert month.usd["cosmos_db"] == costs.monthly.cosmos_db
    assert month.usd["gpu_nodes"] == pytest.approx(3 * 730 * costs.gpu_node_hour)
    assert (month.usd_per_document, month.per_document()) == (None, {})


def test_the_prices_are_appendix_cs_within_its_ranges(check):
    costs = check.check_params.costs
    assert 5000 <= 3 * 730 * costs.gpu_node_hour <= 8000
    assert 500 <= costs.monthly.cosmos_db <= 1000 and 50 <= costs.monthly.redis <= 100
    assert 200 <= costs.monthly.mongodb <= 400 and 100 <= costs.monthly.monitoring <= 200
    assert 10 <= 10_000 * costs.web_search_query <= 50


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(gpu_node_hour=-1), r"costs\.gpu_node_hour: Input should be greater than or equal to 0"),
    (lambda c: c["monthly"].update(redis="75"), r"costs\.monthly\.redis\.int: Input should be a valid integer"),
    (lambda c: c["monthly"].update(cosmos=750), r"costs\.monthly\.cosmos: Extra inputs are not permitted"),
    (lambda c: c.pop("web_search_query"), r"costs\.web_search_query: Field required"),
    (lambda c: c["usage"].update(documents="increase(x[$window])"), r"costs\.usage\.documents: .*\['window'\]"),
])
def test_a_bad_costs_section_is_refused_naming_the_field(spec_data, change, message):
    change(spec_data["costs"])  # the gate and the audit checks name the same section (*costs)
    with pytest.raises(SpecError, match=message):
        parse_spec(spec_data)


def test_a_cost_check_priced_apart_from_the_spec_is_refused(spec_data):
    gate = next(gate for gate in spec_data["gates"] if gate["name"] == "business_cost_per_document")
    gate["params"]["costs"] = {**copy.deepcopy(spec_data["costs"]), "gpu_node_hour": 0.5}
    with pytest.raises(SpecError, match=r"gates\.\d+\.params\.costs: must be the spec's costs section"):
        parse_spec(spec_data)


def test_cost_checks_need_the_costs_section(spec_data):
    del spec_data["costs"]
    with pytest.raises(SpecError, match=r"gates\.\d+: a cost_per_document check needs the spec's costs section"):
        parse_spec(spec_data)
