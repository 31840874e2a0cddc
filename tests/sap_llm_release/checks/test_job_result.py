"""job_result: a number from the result an inference job of this release recorded, held to a threshold."""

from __future__ import annotations

import pytest

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.reports import JobResult, JobResultParams
from sap_llm_release.evidence import Threshold, Verdict

PARAMS = JobResultParams(job="load_test", metric="memory_leak_detected")
NONE = Threshold(op="==", value=0)


def run(recorded: dict, params: JobResultParams = PARAMS, threshold: Threshold = NONE):
    return JobResult().run(params, threshold, CheckContext(service="sap-llm", job_results=recorded.get))


def test_reads_the_recorded_result():
    evidence = run({"load_test": {"memory_leak_detected": 0}})
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 0, "== 0")
    assert evidence.detail == "memory_leak_detected from job load_test"
    assert evidence.evidence_uri == "ledger:job_results/load_test"


def test_a_job_that_recorded_nothing_fails_the_gate():
    evidence = run({})
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == "job load_test recorded no result for this release"


@pytest.mark.parametrize("value", [None, "0", [0]])
def test_a_missing_or_non_numeric_metric_fails(value):
    result = {} if value is None else {"memory_leak_detected": value}
    evidence = run({"load_test": result})
    assert evidence.verdict is Verdict.FAILED
    assert evidence.detail == f"memory_leak_detected in the load_test result is {value!r}, not a number"


def test_booleans_count_as_0_and_1():
    assert run({"load_test": {"memory_leak_detected": True}}).measured == 1


def test_nested_metric_and_failing_value():
    params = JobResultParams(job="model_evaluation", metric="reasoning_engine.api_selection_accuracy")
    evidence = run({"model_evaluation": {"reasoning_engine": {"api_selection_accuracy": 0.99}}}, params,
                   Threshold(op=">=", value=1.0))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0.99)


def test_a_target_without_job_results_cannot_check():
    with pytest.raises(CheckUnavailable):
        JobResult().run(PARAMS, NONE, CheckContext(service="sap-llm"))
