"""The runbook alerts of checklist section 9 (stack/rules.yml), with the SLO rules beside them as Prometheus loads
them: promtool accepts both files, each alert carries a severity, a `for`, a summary and a runbook that exists, and
`promtool test rules` shows a healthy service firing nothing and each fault firing its own alerts and no other."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.support.runs import ROOT

RULES = ROOT / "stack" / "rules.yml"
SLO_RULES = ROOT / "stack" / "slo_rules.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"
MINUTES = 60
CHECKLIST_ALERTS = {  # section 9's runbooks, each with its alert
    "High Error Rate": "SapLlmHighErrorRate", "High Latency": "SapLlmHighLatency",
    "Model Inference Failure": "SapLlmModelInferenceFailures",
    "Database Connection Failure": "SapLlmDatabaseConnectionFailure", "API Endpoint Down": "SapLlmApiEndpointDown",
    "Low GPU Utilization": "SapLlmLowGpuUtilisation", "Disk Space Low": "SapLlmDiskSpaceLow",
    "SLA Violation": "SapLlmSlaViolation", "Low Throughput": "SapLlmLowThroughput",
    "High Memory Usage": "SapLlmHighMemory",
}


def alerts(path=RULES) -> dict[str, dict]:
    return {rule["alert"]: rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]
            if "alert" in rule}


def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(RULES), str(SLO_RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_runbook_alert_of_the_checklist_has_severity_for_summary_and_runbook():
    found = alerts()
    assert set(found) == set(CHECKLIST_ALERTS.values())
    for name, rule in found.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule.get("for") and rule["annotations"]["summary"], name
        assert (ROOT / rule["annotations"]["runbook_url"]).is_file(), f"{name}: {rule['annotations']['runbook_url']}"


def series(**faults: str) -> list[dict]:
    """A healthy service's series for ``MINUTES`` minutes, one sample a minute; ``faults`` replaces some by name."""
    healthy = {
        "errors": ('sap_llm_requests_total{job="sap-llm",colour="blue",status="500"}', "0+1x60"),
        "ok": ('sap_llm_requests_total{job="sap-llm",colour="blue",status="200"}', "0+199x60"),
        "fast": ('sap_llm_request_duration_seconds_bucket{job="sap-llm",colour="blue",le="1.5"}', "0+200x60"),
        "slow": ('sap_llm_request_duration_seconds_bucket{job="sap-llm",colour="blue",le="2"}', "0+200x60"),
        "all": ('sap_llm_request_duration_seconds_bucket{job="sap-llm",colour="blue",le="+Inf"}', "0+200x60"),
        "count": ('sap_llm_request_duration_seconds_count{job="sap-llm",colour="blue"}', "0+200x60"),
        "failures": ('sap_llm_model_inference_failures_total{job="sap-llm",colour="blue"}', "0+0x60"),
        "documents": ('sap_llm_documents_processed_total{job="sap-llm",colour="blue"}', "0+200x60"),
        "up": ('up{job="sap-llm",colour="blue",instance="blue:8000"}', "1+0x60"),
        "redis": ('redis_up{job="redis",instance="redis:9121"}', "1+0x60"),
        "mongodb": ('mongodb_up{job="mongodb",instance="mongodb:9216"}', "1+0x60"),
        "gpu": ('DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter",gpu="0"}', "70+0x60"),
        "disk_free": ('node_filesystem_avail_bytes{instance="gpu-1",mountpoint="/models",fstype="ext4"}', "500+0x60"),
        "disk_size": ('node_filesystem_size_bytes{instance="gpu-1",mountpoint="/models",fstype="ext4"}', "1000+0x60"),
        "memory": ('container_memory_working_set_bytes{container="sap-llm",pod="sap-llm-blue-0"}', "16+0x60"),
        "memory_limit": ('container_spec_memory_limit_bytes{container="sap-llm",pod="sap-llm-blue-0"}', "32+0x60"),
    }
    unknown = set(faults) - set(healthy)
    assert not unknown, unknown
    return [{"series": name, "values": faults.get(key, values)} for key, (name, values) in healthy.items()]


SLO_BURN = ("ErrorBudgetBurnPage", "ErrorBudgetBurnTicket")
SCENARIOS = {  # name: (faults, minute judged, the alerts firing then)
    "healthy": ({}, 59, set()),
    "errors": ({"errors": "0+20x60", "ok": "0+180x60"}, 20,
               {"SapLlmHighErrorRate", "SapLlmSlaViolation", *(f"SapLlmAvailability{a}" for a in SLO_BURN)}),
    "slow": ({"fast": "0+0x60"}, 20,
             {"SapLlmHighLatency", "SapLlmSlaViolation", *(f"SapLlmLatency{a}" for a in SLO_BURN)}),
    "inference_failures": ({"failures": "0+1x60"}, 10, {"SapLlmModelInferenceFailures"}),
    "low_throughput": ({"documents": "0+50x60"}, 40,
                       {"SapLlmLowThroughput", "SapLlmSlaViolation", *(f"SapLlmThroughput{a}" for a in SLO_BURN)}),
    "endpoint_down": ({"up": "0+0x60"}, 10, {"SapLlmApiEndpointDown"}),
    "database_down": ({"redis": "0+0x60"}, 10, {"SapLlmDatabaseConnectionFailure"}),
    "gpu_idle": ({"gpu": "40+0x60"}, 50, {"SapLlmLowGpuUtilisation"}),
    "disk_full": ({"disk_free": "50+0x60"}, 20, {"SapLlmDiskSpaceLow"}),
    "memory_high": ({"memory": "31+0x60"}, 10, {"SapLlmHighMemory"}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_fault_fires_its_alerts_and_no_other(tmp_path, scenario):
    faults, minute, expected = SCENARIOS[scenario]
    firing = [{"labels": f'{{alertname="{name}"}}', "value": 1} for name in sorted(expected)]
    tests = {"rule_files": [str(RULES), str(SLO_RULES)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series(**faults),
        "promql_expr_test": [{"expr": 'count by (alertname) (ALERTS{alertstate="firing"})',
                              "eval_time": f"{minute}m", "exp_samples": firing}],
    }]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
