"""report_metric: a number from a JSON report held to a threshold."""

from __future__ import annotations

import json

import pytest

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.reports import ReportMetric, ReportMetricParams
from sap_llm_release.evidence import Threshold, Verdict

AT_LEAST_95 = Threshold(op=">=", value=0.95)
PARAMS = ReportMetricParams(report="dr_drill", metric="vision_encoder.classification_accuracy")


def run(tmp_path, params: ReportMetricParams = PARAMS, threshold: Threshold = AT_LEAST_95):
    return ReportMetric().run(params, threshold, CheckContext(service="sap-llm", reports_dir=tmp_path))


def write(tmp_path, content) -> str:
    path = tmp_path / "dr_drill.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_pass(tmp_path):
    path = write(tmp_path, {"vision_encoder": {"classification_accuracy": 0.961, "training_documents": 1200000}})
    evidence = run(tmp_path)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 0.961, ">= 0.95")
    assert evidence.detail == "vision_encoder.classification_accuracy from dr_drill.json"
    assert evidence.evidence_uri == path.as_uri()


def test_exactly_at_threshold_passes(tmp_path):
    write(tmp_path, {"vision_encoder": {"classification_accuracy": 0.95}})
    assert run(tmp_path).verdict is Verdict.PASSED


def test_integer_metric(tmp_path):
    (tmp_path / "knowledge_base.json").write_text(json.dumps({"apis": 412}))
    params = ReportMetricParams(report="knowledge_base", metric="apis")
    evidence = run(tmp_path, params, Threshold(op=">=", value=400))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 412)


def test_below_threshold(tmp_path):
    write(tmp_path, {"vision_encoder": {"classification_accuracy": 0.949}})
    evidence = run(tmp_path)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 0.949, ">= 0.95")


def test_missing_file(tmp_path):
    evidence = run(tmp_path)
    path = tmp_path / "dr_drill.json"
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, ">= 0.95")
    assert evidence.detail == f"report {path} does not exist"
    assert evidence.evidence_uri == path.as_uri()


@pytest.mark.parametrize(
    ("report", "shown"),
    [
        ({"vision_encoder": {"field_extraction_f1": 0.95}}, "None"),  # key missing
        ({"vision_encoder": 0.97}, "None"),  # path runs into a number
        ({}, "None"),
        ({"vision_encoder": {"classification_accuracy": "0.97"}}, "'0.97'"),
        ({"vision_encoder": {"classification_accuracy": True}}, "True"),
        ({"vision_encoder": {"classification_accuracy": None}}, "None"),
        ({"vision_encoder": {"classification_accuracy": [0.97]}}, "[0.97]"),
    ],
)
def test_missing_or_non_numeric_value(tmp_path, report, shown):
    path = write(tmp_path, report)
    evidence = run(tmp_path)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, ">= 0.95")
    assert evidence.detail == f"vision_encoder.classification_accuracy in {path} is {shown}, not a number"


def test_unreadable_json(tmp_path):
    path = write(tmp_path, '{"vision_encoder": {"classification_accuracy": 0.97')
    evidence = run(tmp_path)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail.startswith(f"report {path} is unreadable: ")
    assert "Expecting" in evidence.detail


def test_report_is_a_directory(tmp_path):
    (tmp_path / "dr_drill.json").mkdir()
    evidence = run(tmp_path)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.detail.startswith(f"report {tmp_path / 'dr_drill.json'} is unreadable: ")


def test_no_reports_dir_is_unavailable():
    with pytest.raises(CheckUnavailable, match="this target provides no reports_dir"):
        ReportMetric().run(PARAMS, AT_LEAST_95, CheckContext(service="sap-llm"))


@pytest.mark.parametrize(("field", "value"), [("report", "../etc/passwd"), ("metric", "a..b"), ("report", "Model")])
def test_params_refuse_paths_outside_the_reports(field, value):
    data = {"report": "model_evaluation", "metric": "x"}
    data[field] = value
    with pytest.raises(ValueError, match=field):
        ReportMetricParams(**data)
