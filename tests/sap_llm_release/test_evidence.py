"""Thresholds, verdicts and the evidence a check returns."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from sap_llm_release.evidence import Evidence, Threshold, Verdict


@pytest.mark.parametrize(
    ("op", "bound", "measured", "met"),
    [
        (">=", 0.95, 0.95, True),
        (">=", 0.95, 0.9499, False),
        (">", 0, 0, False),
        (">", 0, 0.001, True),
        ("<=", 0.01, 0.01, True),
        ("<=", 0.01, 0.0101, False),
        ("<", 1.5, 1.5, False),
        ("<", 1.5, 1.49, True),
        ("==", 200, 200, True),
        ("==", 200, 503, False),
        ("==", 0, 0.0, True),
    ],
)
def test_threshold_met_by(op, bound, measured, met):
    assert Threshold(op=op, value=bound).met_by(measured) is met


def test_threshold_text():
    assert str(Threshold(op="<", value=1.5, unit="s")) == "< 1.5 s"
    assert str(Threshold(op=">=", value=0.95)) == ">= 0.95"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"op": ">=", "value": "0.95"}, "value"),
        ({"op": ">=", "value": True}, "value"),
        ({"op": "=>", "value": 1}, "op"),
        ({"op": ">=", "value": 1, "units": "s"}, "units"),
        ({"op": ">="}, "value"),
    ],
)
def test_threshold_invalid(data, field):
    with pytest.raises(ValidationError) as excinfo:
        Threshold.model_validate(data)
    assert {error["loc"][0] for error in excinfo.value.errors()} == {field}


def test_threshold_is_frozen():
    threshold = Threshold(op=">=", value=1)
    with pytest.raises(ValidationError):
        threshold.value = 2


def test_compare_pass_and_fail():
    bound = Threshold(op=">=", value=10)
    passed = Evidence.compare(10, bound, "10/10 documents", evidence_uri="http://green")
    assert (passed.verdict, passed.measured, passed.threshold, passed.detail, passed.evidence_uri) == (
        Verdict.PASSED,
        10,
        ">= 10",
        "10/10 documents",
        "http://green",
    )
    failed = Evidence.compare(9, bound, "9/10 documents")
    assert (failed.verdict, failed.measured, failed.threshold) == (Verdict.FAILED, 9, ">= 10")


def test_compare_without_measurement_fails():
    evidence = Evidence.compare(None, Threshold(op="==", value=0), "PromQL up")
    assert evidence.verdict is Verdict.FAILED
    assert evidence.measured is None
    assert evidence.detail == "no measurement: PromQL up"
    assert Evidence.compare(None, Threshold(op="==", value=0)).detail == "no measurement"


def test_compare_keeps_extra():
    evidence = Evidence.compare(1, Threshold(op="==", value=1), extra={"attested_by": "x"})
    assert evidence.extra == {"attested_by": "x"}


def test_only_failed_stops_the_release():
    assert [verdict for verdict in Verdict if not verdict.lets_release_continue] == [Verdict.FAILED]
    assert Verdict.WAIVED.lets_release_continue and Verdict.ATTESTED.lets_release_continue


def test_describe():
    evidence = Evidence.compare(1.7, Threshold(op="<", value=1.5, unit="s"), "p95 from load_test.json")
    assert evidence.describe("load_test_p95_latency") == (
        "gate load_test_p95_latency failed: measured 1.7, threshold < 1.5 s (p95 from load_test.json)"
    )
    assert Evidence(Verdict.ATTESTED).describe("dr_runbook") == "gate dr_runbook attested: measured no data"


def test_evidence_is_immutable():
    evidence = Evidence(Verdict.PASSED, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        evidence.verdict = Verdict.FAILED


def test_an_unmeasured_check_fails_with_its_reason():
    evidence = Evidence.unmeasured(Threshold(op=">=", value=2), "GET https://x failed: refused", "https://x")
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, ">= 2")
    assert (evidence.detail, evidence.evidence_uri) == ("GET https://x failed: refused", "https://x")
    assert Evidence.unmeasured(None, "no attestation").threshold == ""
    assert not evidence.verdict.lets_release_continue
