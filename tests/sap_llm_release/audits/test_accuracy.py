"""The weekly accuracy review's check: the audit job's evaluation result held to the model gates' thresholds, as the
spec defines it; a job that left no result is no data."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.audits.kinds import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.jobs.base import JobOutcome
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE

SPEC = load_spec(SPEC_FILE)
CHECK = SPEC.audits.weekly.check("model_accuracy")
RUN = "sap_llm_audit_weekly:scheduled__2026-11-30T07:00:00+00:00"
END = datetime(2026, 11, 30, 7, tzinfo=timezone.utc)
WRITER = Writer(dag_id="sap_llm_audit_weekly", run_id="scheduled__2026-11-30T07:00:00+00:00",
                task_id="jobs.accuracy_review", try_number=1)
EVALUATION = {  # the validator's evaluate result, the metrics the gates read
    "kind": "evaluate", "passed": True, "documents": 150,
    "vision_encoder": {"classification_accuracy": 0.99, "field_extraction_f1": 0.97, "document_types_passed": 15,
                       "po_subtypes_passed": 35},
    "language_decoder": {"json_schema_compliance": 1.0, "extraction_f1": 0.96, "self_correction_rate": 0.9},
    "reasoning_engine": {"routing_accuracy": 0.99, "api_selection_accuracy": 1.0},
}


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    ledger.record_audit_run(RUN, audit="weekly", service="sap-llm", period_start=END - timedelta(days=7),
                            period_end=END, triggered_by="schedule", spec_digest=SPEC.digest, writer=WRITER)
    return ledger


def judged(ledger: Ledger, result: dict | None):
    if result is not None:
        outcome = JobOutcome(job="accuracy_review", image="validator", command="evaluate", runner="local_process",
                             exit_code=0 if result.get("passed") else 1, result_text=json.dumps(result),
                             detail="exit 0", started_at=END.isoformat(), finished_at=END.isoformat())
        ledger.record_audit_job_result(RUN, outcome, WRITER)
    context = AuditContext("sap-llm", END - timedelta(days=7), END, timedelta(hours=1), ledger=ledger, run_id=RUN,
                           job_gates={gate.name: (gate.params["metric"], gate.threshold) for gate in SPEC.gates
                                      if gate.kind == "job_result"})
    return judge(CHECK, context)


def test_a_model_that_meets_every_release_threshold_is_ok(ledger):
    finding = judged(ledger, EVALUATION)
    assert (finding.severity, finding.measured) == (Severity.OK, 0)
    assert finding.detail.startswith("9 of 9 metrics meet their release gate on 150 documents; "
                                     "vision_encoder.classification_accuracy 0.99 (>= 0.95: met); ")


def test_one_metric_short_is_a_warning_two_are_critical(ledger):
    result = copy.deepcopy(EVALUATION)
    result["vision_encoder"]["field_extraction_f1"] = 0.91
    finding = judged(ledger, result)
    assert (finding.severity, finding.measured) == (Severity.WARNING, 1)
    assert "vision_encoder.field_extraction_f1 0.91 (>= 0.94: SHORT)" in finding.detail
    del result["reasoning_engine"]["routing_accuracy"]
    ledger.record_audit_job_result(RUN, JobOutcome(
        job="accuracy_review", image="validator", command="evaluate", runner="local_process", exit_code=1,
        result_text=json.dumps(result), detail="exit 1", started_at=END.isoformat(), finished_at=END.isoformat()),
        replace(WRITER, try_number=2))
    finding = judged(ledger, None)
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, 2)
    assert "reasoning_engine.routing_accuracy missing (>= 0.97: SHORT)" in finding.detail


def test_a_job_without_a_result_is_no_data(ledger):
    finding = judged(ledger, None)
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, None)
    assert finding.detail == "no data: job accuracy_review left no result in this audit run (see its task's log)"


def test_the_spec_refuses_a_review_that_reads_no_job_gate(spec_data):
    from pydantic import ValidationError

    from sap_llm_release.spec import ReleaseSpec

    checks = spec_data["audits"]["weekly"]["checks"]
    review = next(check for check in checks if check["kind"] == "model_accuracy")
    review["params"]["gates"] = ["prometheus_deployed"]
    with pytest.raises(ValidationError, match=r"audits\.weekly\.checks\.\d+\.params\.gates: 'prometheus_deployed' "
                                              "is not a job_result gate"):
        ReleaseSpec.model_validate(spec_data)
    review["params"]["gates"] = ["load_test_p95_latency"]
    with pytest.raises(ValidationError, match="gate 'load_test_p95_latency' reads job 'load_test' .loadtest load., not "
                                              "a result of validator evaluate"):
        ReleaseSpec.model_validate(spec_data)
    review["params"] = {"job": "no_such_job", "gates": ["vision_encoder_field_extraction_f1"]}
    with pytest.raises(ValidationError, match=r"checks\.\d+\.params\.job: no job named 'no_such_job'"):
        ReleaseSpec.model_validate(spec_data)


TREND = SPEC.audits.monthly.check("accuracy_trend")
MONTH_END = datetime(2026, 12, 1, 8, tzinfo=timezone.utc)


def weekly_reviews(ledger: Ledger, classification: list[float]) -> None:
    """One weekly audit run a week before the month's end for each value, its review's classification accuracy."""
    for weeks_before, value in enumerate(reversed(classification)):
        end = MONTH_END - timedelta(days=7 * weeks_before + 1)
        run = f"sap_llm_audit_weekly:scheduled__{end.isoformat()}"
        ledger.record_audit_run(run, audit="weekly", service="sap-llm", period_start=end - timedelta(days=7),
                                period_end=end, triggered_by="schedule", spec_digest=SPEC.digest,
                                writer=replace(WRITER, run_id=end.isoformat()))
        result = copy.deepcopy(EVALUATION)
        result["vision_encoder"]["classification_accuracy"] = value
        ledger.record_audit_job_result(run, JobOutcome(
            job="accuracy_review", image="validator", command="evaluate", runner="local_process", exit_code=0,
            result_text=json.dumps(result), detail="exit 0", started_at=end.isoformat(),
            finished_at=end.isoformat()), replace(WRITER, run_id=end.isoformat()))


def month_context(ledger: Ledger) -> AuditContext:
    return AuditContext("sap-llm", MONTH_END - timedelta(days=30), MONTH_END, timedelta(hours=1), ledger=ledger,
                        job_gates={gate.name: (gate.params["metric"], gate.threshold) for gate in SPEC.gates
                                   if gate.kind == "job_result"})


def test_an_accuracy_falling_towards_its_gate_recommends_retraining(ledger):
    weekly_reviews(ledger, [0.99, 0.98, 0.97, 0.96])  # a point a week down: 0.95 in about a week
    finding = judge(TREND, month_context(ledger))
    assert finding.severity is Severity.CRITICAL and 5 < finding.measured < 9, finding.detail
    assert re.match(r"4 reviews; vision_encoder\.classification_accuracy 0\.95\d+ now, -0\.01 a week, short of >= "
                    r"0\.95 in \d days; ", finding.detail), finding.detail
    assert [series.name for series in finding.series][0] == "vision_encoder.classification_accuracy"


def test_a_steady_accuracy_needs_no_retraining(ledger):
    weekly_reviews(ledger, [0.99, 0.991, 0.99, 0.989])
    finding = judge(TREND, month_context(ledger))
    assert (finding.severity, finding.measured) == (Severity.OK, None)
    assert finding.measured_text == "no metric reaches its release threshold within 90 days"


def test_fewer_than_three_reviews_is_no_data(ledger):
    weekly_reviews(ledger, [0.99, 0.98])
    finding = judge(TREND, month_context(ledger))
    assert (finding.severity, finding.measured) == (Severity.WARNING, None)
    assert finding.detail == "no data: 2 weekly reviews (accuracy_review) in the period; a trend needs 3"


def test_a_metric_the_reviews_do_not_report_is_no_data(ledger):
    weekly_reviews(ledger, [0.99, 0.99, 0.99])  # reviews without a held-out set: no heldout_extraction_f1
    trend = TREND.model_copy(update={"params": {**TREND.params, "gates": [*TREND.params["gates"],
                                                                          "language_decoder_heldout_cross_validation"]}})
    finding = judge(trend, month_context(ledger))
    assert (finding.severity, finding.measured) == (Severity.WARNING, None)
    assert finding.detail == ("no data: language_decoder.heldout_extraction_f1: 0 of 3 reviews report it; a trend "
                              "needs 3")
