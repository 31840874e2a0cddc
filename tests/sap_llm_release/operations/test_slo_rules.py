"""The SLO rules generated from the spec: the committed file is what the spec generates, promtool accepts it, and
``promtool test rules`` shows each burn-rate alert firing on series that burn the budget and staying quiet on ones
that do not."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest
import yaml
from pydantic import ValidationError

from sap_llm_release.operations.slo import ServiceLevelObjective
from sap_llm_release.operations.slo_rules import RULES_FILE, promql_duration, rules_text, sli_query
from sap_llm_release.spec import load_spec
from sap_llm_release.templates import render
from tests.support.runs import SPEC_FILE

RULES = yaml.safe_load(RULES_FILE.read_text())
ALERTS = {rule["alert"]: rule for group in RULES["groups"] for rule in group["rules"] if "alert" in rule}
MINUTES = 100  # each scenario's length, one sample a minute
SPEC = load_spec(SPEC_FILE)


def test_the_committed_rules_are_what_the_spec_generates():
    assert RULES_FILE.read_text() == rules_text(SPEC_FILE), \
        "stack/slo_rules.yml is stale: run .venv/bin/python -m sap_llm_release.operations.slo_rules"


def test_every_slo_records_each_window_and_has_a_page_and_a_ticket():
    recorded = {(rule["labels"]["sloth_slo"], rule["labels"]["sloth_window"]) for group in RULES["groups"]
                for rule in group["rules"] if rule.get("record") == "slo:sli_error:ratio_rate" +
                rule.get("labels", {}).get("sloth_window", "")}
    windows = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"]
    assert recorded == {(slo, window) for slo in ("availability", "latency", "throughput") for window in windows}
    assert sorted(ALERTS) == sorted(f"SapLlm{slo}ErrorBudgetBurn{kind}" for slo in ("Availability", "Latency",
                                    "Throughput") for kind in ("Page", "Ticket"))
    assert {ALERTS[name]["labels"]["severity"] for name in ALERTS if name.endswith("Page")} == {"critical"}
    assert {ALERTS[name]["labels"]["severity"] for name in ALERTS if name.endswith("Ticket")} == {"warning"}


def test_promtool_accepts_the_rules():
    result = subprocess.run(["promtool", "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 48 rules found" in result.stdout


def series(errors_per_min: int, ok_per_min: int, slow_per_min: int = 0, docs_per_min: int = 100) -> list[dict]:
    """The service's counters for ``MINUTES`` minutes: requests by status, their latency (``slow_per_min`` of them
    over 1.5 s) and documents processed."""
    total = errors_per_min + ok_per_min
    job = 'job="sap-llm"'
    return [
        {"series": f'sap_llm_requests_total{{{job},status="500"}}', "values": f"0+{errors_per_min}x{MINUTES}"},
        {"series": f'sap_llm_requests_total{{{job},status="200"}}', "values": f"0+{ok_per_min}x{MINUTES}"},
        {"series": f"sap_llm_request_duration_seconds_count{{{job}}}", "values": f"0+{total}x{MINUTES}"},
        {"series": f'sap_llm_request_duration_seconds_bucket{{{job},le="1.5"}}',
         "values": f"0+{total - slow_per_min}x{MINUTES}"},
        {"series": f"sap_llm_documents_processed_total{{{job}}}", "values": f"0+{docs_per_min}x{MINUTES}"},
    ]


def expected(*names: str) -> list[dict]:
    return [{"exp_labels": ALERTS[name]["labels"], "exp_annotations": ALERTS[name]["annotations"]} for name in names]


def quiet_at(minute: int) -> list[dict]:
    return [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": []} for name in ALERTS]


def firing(minute: int, fired: list[str]) -> list[dict]:
    """At ``minute``: each alert in ``fired`` firing, every other alert quiet."""
    return [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": expected(name) if name in fired else []}
            for name in ALERTS]


SCENARIOS = {
    # 0.5 % errors, every request fast, 6,000 documents an hour: nothing burns
    "healthy": (series(errors_per_min=1, ok_per_min=199), quiet_at(10) + quiet_at(70) + quiet_at(MINUTES)),
    # 20 % errors: over 14.4x the 1 % budget on 5m and 1h (a page) and 3x on 2h and 1d (a ticket), from the first
    # minutes on (a rate is taken over the samples there are)
    "errors": (series(errors_per_min=20, ok_per_min=80),
               firing(10, ["SapLlmAvailabilityErrorBudgetBurnPage", "SapLlmAvailabilityErrorBudgetBurnTicket"])
               + firing(70, ["SapLlmAvailabilityErrorBudgetBurnPage", "SapLlmAvailabilityErrorBudgetBurnTicket"])),
    # 80 % of requests slower than 1.5 s: over 14.4x the 5 % budget (72 %)
    "slow": (series(errors_per_min=0, ok_per_min=100, slow_per_min=80),
             firing(70, ["SapLlmLatencyErrorBudgetBurnPage", "SapLlmLatencyErrorBudgetBurnTicket"])),
    # 3,000 documents an hour: every minute under the 5K floor
    "throughput": (series(errors_per_min=0, ok_per_min=100, docs_per_min=50),
                   firing(70, ["SapLlmThroughputErrorBudgetBurnPage", "SapLlmThroughputErrorBudgetBurnTicket"])),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_burn_rate_alerts_fire_on_a_burning_budget_and_stay_quiet_otherwise(tmp_path, scenario):
    input_series, alert_tests = SCENARIOS[scenario]
    tests = {"rule_files": [str(RULES_FILE)], "evaluation_interval": "1m",
             "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": alert_tests}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_budget_metadata_is_recorded(tmp_path):
    tests = {"rule_files": [str(RULES_FILE)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series(errors_per_min=2, ok_per_min=98),
        "promql_expr_test": [
            {"expr": 'slo:error_budget:ratio{sloth_slo="availability"}', "eval_time": "60m",
             "exp_samples": [{"labels": 'slo:error_budget:ratio{sloth_id="sap-llm-availability",'
                                        'sloth_service="sap-llm",sloth_slo="availability"}', "value": 0.01}]},
            # 2 % errors against a 1 % budget: burning at twice the sustainable rate
            {"expr": 'round(slo:current_burn_rate:ratio{sloth_slo="availability"}, 0.01)', "eval_time": "60m",
             "exp_samples": [{"labels": '{sloth_id="sap-llm-availability",sloth_service="sap-llm",'
                                        'sloth_slo="availability",sloth_window="5m"}', "value": 2}]},
            {"expr": 'round(slo:period_error_budget_remaining:ratio{sloth_slo="availability"}, 0.01)',
             "eval_time": "60m", "exp_samples": [{"labels": '{sloth_id="sap-llm-availability",sloth_service='
                                                            '"sap-llm",sloth_slo="availability",sloth_window="30d"}',
                                                  "value": -1}]},  # 2 % for the whole (short) period: twice spent
        ]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_error_budget_gate_reads_every_slos_budget_and_answers_nothing_while_one_is_missing(tmp_path):
    """The preflight gate's query on the rules' output: the smallest budget left while every SLO has one; no answer
    (a failed gate) when one SLO records none, here latency without its histogram, rather than the others' minimum."""
    gate_query = render(SPEC.gate("error_budget_remaining").params["query"], service="sap-llm")
    without_latency = [s for s in series(errors_per_min=1, ok_per_min=199)
                       if not s["series"].startswith("sap_llm_request_duration")]
    tests = {"rule_files": [str(RULES_FILE)], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": series(errors_per_min=1, ok_per_min=199),  # 0.5 % errors: half left
         "promql_expr_test": [{"expr": f"round({gate_query}, 0.01)", "eval_time": "60m",
                               "exp_samples": [{"labels": "{}", "value": 0.5}]}]},
        {"interval": "1m", "input_series": without_latency,
         "promql_expr_test": [{"expr": gate_query, "eval_time": "60m", "exp_samples": []}]},
    ]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_audits_sli_query_reads_the_recording_rule_and_agrees_with_the_definition_in_place(tmp_path):
    """What the audits ask for the availability SLO at 1 h: the recorded series while the rules record it, and the
    spec's own expression (the 90 m window no rule records) gives the same ratio over the same traffic."""
    levels = SPEC.service_levels
    availability = next(slo for slo in levels.slos if slo.name == "availability")
    recorded = sli_query("sap-llm", availability, levels, timedelta(hours=1))
    in_place = sli_query("sap-llm", availability, levels, timedelta(minutes=90))
    sloth = 'sloth_id="sap-llm-availability",sloth_service="sap-llm",sloth_slo="availability"'
    tests = {"rule_files": [str(RULES_FILE)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series(errors_per_min=2, ok_per_min=98),
        "promql_expr_test": [
            {"expr": f"round({recorded}, 0.0001)", "eval_time": "95m",
             "exp_samples": [{"labels": f'{{{sloth},sloth_window="1h"}}', "value": 0.02}]},
            {"expr": f"round({in_place}, 0.0001)", "eval_time": "95m",
             "exp_samples": [{"labels": "{}", "value": 0.02}]},
        ]}]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(["promtool", "test", "rules", str(tmp_path / "test.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert recorded.startswith(f"slo:sli_error:ratio_rate1h{{{sloth.replace(',', ', ')}}} or on() (")


@pytest.mark.parametrize("fields", [{}, {"errors": "a", "total": "b", "error_ratio": "c"}, {"errors": "a"}])
def test_an_slo_names_one_sli(fields):
    with pytest.raises(ValidationError, match="give either errors and total, or error_ratio"):
        ServiceLevelObjective(name="availability", description="d", objective=0.99, runbook="r.md", **fields)


def test_an_unknown_template_variable_is_named():
    with pytest.raises(ValidationError, match=r"error_ratio\n.*unknown template variables \['rate_window'\]"):
        ServiceLevelObjective(name="availability", description="d", objective=0.99, runbook="r.md",
                              error_ratio="x[$rate_window]")


@pytest.mark.parametrize(("window", "text"), [(timedelta(days=30), "30d"), (timedelta(hours=6), "6h"),
                                              (timedelta(minutes=90), "90m"), (timedelta(seconds=45), "45s")])
def test_windows_are_written_in_their_largest_unit(window, text):
    assert promql_duration(window) == text


def test_the_stacks_prometheus_records_every_slo_and_its_budget(local_stack):
    import time

    import httpx

    def slos(metric: str) -> set[str]:
        answer = httpx.get(f"{local_stack.prometheus_url}/api/v1/query", params={"query": metric}, timeout=5).json()
        return {sample["metric"]["sloth_slo"] for sample in answer["data"]["result"]}

    deadline = time.monotonic() + 40  # each SLO group is evaluated every 10 s, the budget after the SLI it reads
    while slos("slo:period_error_budget_remaining:ratio") != {"availability", "latency", "throughput"} \
            and time.monotonic() < deadline:
        time.sleep(0.5)
    assert slos("slo:period_error_budget_remaining:ratio") == {"availability", "latency", "throughput"}
    assert slos("slo:sli_error:ratio_rate30d") == {"availability", "latency", "throughput"}
