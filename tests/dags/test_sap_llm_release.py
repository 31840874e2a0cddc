"""Full rehearsals of the release DAG (dag.test) against the live local stack, windows compressed."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE, attestations, release_conf, release_id, run_release

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]
SPEC = load_spec(SPEC_FILE)
STEPS = [step.weight for step in SPEC.traffic.steps]


@pytest.fixture
def ledger(airflow_db):
    import json
    import os

    return Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])


@pytest.fixture(autouse=True)
def notifications(notification_standins):
    return notification_standins


def slack_thread(slack, run_id: str) -> list[str]:
    """The texts of one release's Slack thread: its opening message, then the replies in order."""
    posts = slack.calls("chat.postMessage")
    opening = next(p for p in posts if run_id in str(p.get("blocks")))
    ts = f"1700000000.{posts.index(opening) + 1:06d}"
    return [opening["text"]] + [p["text"] for p in posts if p.get("thread_ts") == ts]


def pages(pagerduty, run_id: str) -> list[tuple[str, str]]:
    return [(e["event_action"], e["dedup_key"]) for e in pagerduty.events() if run_id in e["dedup_key"]]


def _failed(states):
    return sorted(task for task, state in states.items() if state == "failed")


def test_clean_release_promotes_and_the_next_goes_to_the_free_slot(quiet_stack, ledger, notifications):
    dag_run, states = run_release(release_conf())

    assert dag_run.state == "success", _failed(states)
    assert all(states[f"traffic_shift.{kind}_{w:03d}"] == "success" for w in STEPS for kind in ("shift_to", "watch"))
    assert states["decommission_blue.remove_blue"] == "success"
    assert states["rollback.rollback_to_blue"] == "skipped"
    target = quiet_stack.target
    assert target.router.get_weights() == Weights(0, 100)
    assert target.deployer.running_version("blue") is None
    assert target.deployer.running_version("green") == "1.1.0"

    record = ledger.release_record(release_id(dag_run))
    assert record["releases"][0]["triggered_by"] == "dag_test"  # the Airflow user dag.test() runs as
    assert "requested by release-tester" in record["release_events"][0]["detail"]
    assert [c["green_after"] for c in record["traffic_changes"]] == STEPS
    assert [(w["green_weight"], w["verdict"]) for w in record["slo_windows"]] == [(w, "passed") for w in STEPS]
    verdicts = {row["gate"]: row["verdict"] for row in record["gate_results"]}
    assert len(verdicts) == len(SPEC.gates)
    waived = {w.gate for w in SPEC.profile("rehearsal").waivers}
    assert {g for g, v in verdicts.items() if v == "waived"} == waived
    assert {g for g, v in verdicts.items() if v == "attested"} == set(attestations())
    assert "failed" not in verdicts.values()
    assert verdicts["smoke_documents"] == "passed" and verdicts["business_touchless_rate"] == "passed"
    events = [e["event"] for e in record["release_events"]]
    assert events == ["started", "green_deployed", "blue_decommissioned", "promoted"]
    assert record["rollbacks"] == []
    slack, pagerduty = notifications
    thread = slack_thread(slack, dag_run.run_id)
    assert thread[0] == "Release of sap-llm 1.1.0 to rehearsal started by dag_test"
    shifts = zip([0, *STEPS], STEPS, strict=False)
    assert [t for t in thread if t.startswith("traffic:")] == [
        f"traffic: {after} % on green 1.1.0 (was {before} %)" for before, after in shifts]
    assert thread[1].startswith("every gate before traffic let the release through:\nmodel_validation: ")
    assert thread[-2].startswith("post-deployment validation: post_deployment: ")
    assert thread[-1].startswith("release promoted: 1.1.0 serves 100% of rehearsal")
    assert pages(pagerduty, dag_run.run_id) == []  # nobody is paged for a good release

    # The next release goes to the slot that is free now (blue), with the slot that was green as production.
    second, states = run_release(release_conf(version="1.2.0"))

    assert second.state == "success", _failed(states)
    assert ledger.blue_slot(release_id(dag_run)) == "blue" and ledger.blue_slot(release_id(second)) == "green"
    assert target.router.get_weights() == ALL_BLUE  # slots named as themselves: the blue slot serves everything
    assert target.deployer.running_version("blue") == "1.2.0"
    assert target.deployer.running_version("green") is None
    second_record = ledger.release_record(release_id(second))
    assert [c["green_after"] for c in second_record["traffic_changes"]] == STEPS
    assert {row["verdict"] for row in second_record["gate_results"]} == {"passed", "waived", "attested"}
    jobs = {row["job"]: row for row in second_record["job_results"]}
    assert set(jobs) == {"model_evaluation", "weights_verification", "green_smoke", "load_test"}
    assert all(row["exit_code"] == 0 and row["passed"] for row in jobs.values())
    assert verdicts["language_decoder_json_schema_compliance"] == "passed"  # measured, not waived


@pytest.mark.parametrize("breach_at", STEPS)
def test_slo_breach_at_any_step_rolls_back_to_blue(quiet_stack, ledger, breach_at, notifications):
    production_version = quiet_stack.target.deployer.running_version("blue")
    quiet_stack.when_green_weight(breach_at, lambda: quiet_stack.set_faults("green", error_rate=1.0))

    dag_run, states = run_release(release_conf())

    assert dag_run.state == "failed"
    assert states[f"traffic_shift.watch_{breach_at:03d}"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert states["decommission_blue.remove_blue"] == "skipped"
    target = quiet_stack.target
    assert target.router.get_weights() == ALL_BLUE
    assert target.deployer.running_version("green") is None
    assert target.deployer.running_version("blue") == production_version

    record = ledger.release_record(release_id(dag_run))
    windows = {w["green_weight"]: w for w in record["slo_windows"]}
    assert windows[breach_at]["verdict"] == "failed" and "error_rate" in windows[breach_at]["reason"]
    assert [c["green_after"] for c in record["traffic_changes"]] == [w for w in STEPS if w <= breach_at] + [0]
    (rollback,) = record["rollbacks"]
    assert rollback["blue_weight_after"] == 100 and rollback["blue_healthy"] == 1 and rollback["green_removed"] == 1
    assert f"step_{breach_at:03d}" in rollback["cause"]
    assert record["release_events"][-1]["event"] == "rolled_back"
    slack, pagerduty = notifications
    key = f"sap-llm-release/{release_id(dag_run)}"
    assert pages(pagerduty, dag_run.run_id) == [("trigger", key), ("resolve", key)]  # paged once, resolved
    assert any(text.startswith("rolled back to blue") for text in slack_thread(slack, dag_run.run_id))


def test_gate_failure_before_traffic_touches_nothing(fresh_stack, ledger):
    missing = "reasoning_engine_chain_of_thought_quality"
    dag_run, states = run_release(release_conf(attestations=attestations(skip=(missing,))))

    assert dag_run.state == "failed"
    assert set(_failed(states)) == {f"model_validation.{missing}", "finish_release"}
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert states["rollback.rollback_to_blue"] == "skipped"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    assert fresh_stack.target.deployer.running_version("green") is None

    record = ledger.release_record(release_id(dag_run))
    assert record["traffic_changes"] == [] and record["rollbacks"] == []
    (final,) = [e for e in record["release_events"] if e["event"] == "failed"]
    assert f"gate {missing} failed" in final["detail"] and "ML lead must attest" in final["detail"]


def test_a_job_that_leaves_no_result_fails_its_gates_and_is_recorded(fresh_stack, ledger, tmp_path, monkeypatch):
    spec = SPEC_FILE.read_text().replace("model_artifacts: .models/rehearsal/model",
                                         f"model_artifacts: {tmp_path / 'no-such-model'}")
    (tmp_path / "spec.yaml").write_text(spec)
    monkeypatch.setenv("SAP_LLM_RELEASE_SPEC", str(tmp_path / "spec.yaml"))

    dag_run, states = run_release(release_conf())

    assert states["model_validation.run_model_evaluation"] == "failed"
    assert states["model_validation.vision_encoder_classification_accuracy"] == "upstream_failed"
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    (job,) = ledger.release_record(release_id(dag_run))["job_results"]
    assert (job["job"], job["exit_code"], job["result_json"], job["runner"]) == (
        "model_evaluation", 2, None, "local_process")
    assert "no-such-model" in job["detail"]


def test_prometheus_unreachable_during_a_window_rolls_back(fresh_stack, ledger):
    fresh_stack.when_green_weight(5, fresh_stack.kill_prometheus)

    dag_run, states = run_release(release_conf())

    assert states["traffic_shift.watch_005"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    record = ledger.release_record(release_id(dag_run))
    (window,) = record["slo_windows"]
    assert window["verdict"] == "failed" and "Prometheus" in window["reason"]


def test_invalid_trigger_params_are_refused_naming_the_field(fresh_stack):
    with pytest.raises(ParamValidationError, match="version"):
        run_release(release_conf(version="latest"))


def test_production_environment_needs_production_profile(fresh_stack, ledger):
    dag_run, states = run_release(release_conf(environment="production"))

    assert states["start_release"] == "failed"
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    assert ledger.rows("SELECT * FROM releases WHERE release_id = :r", r=release_id(dag_run)) == []


def test_one_release_per_environment(fresh_stack, ledger):
    holder = "sap_llm_release:another-run"
    ledger.migrate()
    ledger.record_release(
        holder, service="sap-llm", environment="rehearsal", version="1.0.9", profile="rehearsal",
        triggered_by="someone-else", spec_digest="x", blue_slot="blue",
        writer=Writer("sap_llm_release", "another-run", "start", 1),
    )
    ledger.acquire_environment("rehearsal", holder)
    try:
        dag_run, states = run_release(release_conf())
    finally:
        ledger.release_environment("rehearsal", holder)

    assert states["start_release"] == "failed"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    events = ledger.release_record(release_id(dag_run))["release_events"]
    assert events[0]["event"] == "refused" and holder in events[0]["detail"]
