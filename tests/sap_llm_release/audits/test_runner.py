"""Judging one audit check: gaps and missing data are never a pass, an unreachable Prometheus is critical, a target
that lacks the system is no data at the check's severity; findings survive the trip through XCom."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.audits.kinds import AuditContext
from sap_llm_release.audits.model import Finding, Series, Severity
from sap_llm_release.audits.runner import audit_period, finding_from_dict, finding_to_dict, judge, not_judged
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE

END = datetime(2026, 11, 29, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SPEC = load_spec(SPEC_FILE)
DAILY = SPEC.audits.daily


class RecordedRange:
    """Answers every range query with the series given, or raises the exception given."""

    def __init__(self, answer) -> None:
        self.answer, self.asked = answer, []

    def query_range(self, promql, start, end, step):
        self.asked.append((promql, start, end, step))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def hourly(values, end=END):
    return [(end.timestamp() - 3600 * (len(values) - 1 - i), value) for i, value in enumerate(values)]


def context(metrics, step: timedelta = HOUR) -> AuditContext:
    return AuditContext("sap-llm", END - timedelta(days=1), END, step, metrics=metrics,
                        service_levels=SPEC.service_levels)


def test_the_worst_point_is_judged_on_the_day_its_hour_belongs_to():
    values = [0.002] * 24
    values[10] = 0.03
    metrics = RecordedRange([({}, hourly(values))])
    finding = judge(DAILY.check("error_rate"), context(metrics))
    assert (finding.severity, finding.measured, finding.day) == (Severity.WARNING, 0.03, date(2026, 11, 28))
    assert "at 2026-11-28 11:00 UTC" in finding.detail and finding.series[0].bounds == {"warning": 0.01,
                                                                                         "critical": 0.05}
    promql, start, end, step = metrics.asked[0]
    assert (start, end, step) == (END - timedelta(hours=23), END, HOUR)


def test_an_slo_series_reads_the_slos_recording_rule_at_a_recorded_window_else_its_definition():
    """One definition of the availability SLO: its 1 h recording rule, or (where the rule has no sample) the
    spec's service_levels expression at 1 h; at a window no rule records, that expression alone."""
    metrics = RecordedRange([({}, hourly([0.002] * 24))])
    judge(DAILY.check("error_rate"), context(metrics))
    recorded = metrics.asked[0][0]
    assert recorded.startswith('slo:sli_error:ratio_rate1h{sloth_id="sap-llm-availability", sloth_service="sap-llm"')
    assert ' or on() ((sum(rate(sap_llm_requests_total{job="sap-llm",status=~"5.."}[1h])) or vector(0))' in recorded
    judge(DAILY.check("error_rate"), context(metrics, step=timedelta(minutes=90)))
    assert metrics.asked[1][0].startswith("(sum(rate(") and "[90m]" in metrics.asked[1][0]


def test_an_slo_series_without_the_specs_slos_is_no_data():
    finding = judge(DAILY.check("error_rate"), AuditContext("sap-llm", END - timedelta(days=1), END, HOUR,
                                                            metrics=RecordedRange([])))
    assert finding.measured is None and "service_levels define no SLO 'availability'" in finding.detail


def test_a_lower_bound_judges_the_lowest_point():
    values = [6000.0] * 24
    values[5] = 2000.0
    finding = judge(DAILY.check("throughput"), context(RecordedRange([({}, hourly(values))])))
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, 2000.0)


def test_missing_hours_make_a_good_series_a_warning_and_no_points_no_data():
    gappy = judge(DAILY.check("error_rate"), context(RecordedRange([({}, hourly([0.002] * 20))])))
    assert gappy.severity is Severity.WARNING and "no data for 4 of 24 steps" in gappy.detail
    empty = judge(DAILY.check("error_rate"), context(RecordedRange([])))
    assert (empty.severity, empty.measured) == (Severity.CRITICAL, None) and empty.detail.startswith("no data")


def test_an_unreachable_prometheus_is_critical():
    finding = judge(DAILY.check("availability"), context(RecordedRange(MetricsUnavailable("connection refused"))))
    assert finding.severity is Severity.CRITICAL and "Prometheus could not be asked: connection refused" in \
        finding.detail


def test_a_query_giving_several_series_is_refused():
    with pytest.raises(ValueError, match="gives 2 series; aggregate it to one"):
        judge(DAILY.check("error_rate"), context(RecordedRange([({"a": "1"}, hourly([0.1])), ({"a": "2"}, [])])))


def test_a_check_whose_task_left_nothing_is_critical():
    finding = not_judged(DAILY.check("throughput"), "its task failed")
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, None)
    assert finding.detail == "no data: not judged: its task failed"


def test_a_finding_round_trips_through_plain_data():
    finding = Finding("cost", "slo_series", Severity.WARNING, 0.006, "< 0.005", "detail", day=date(2026, 11, 28),
                      evidence_uri="file:///x", series=(Series("cost", ((1.0, 2.0),), "USD", {"warning": 0.005}),),
                      breakdown={"gpu": 0.004})
    assert finding_from_dict(finding_to_dict(finding)) == finding


def test_the_period_is_the_one_before_the_scheduled_time_to_the_second():
    due = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=timezone.utc)
    assert audit_period(due, timedelta(days=7)) == (datetime(2026, 11, 22, 6, tzinfo=timezone.utc),
                                                    datetime(2026, 11, 29, 6, tzinfo=timezone.utc))
