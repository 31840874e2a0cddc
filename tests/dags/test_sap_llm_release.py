"""Full rehearsals of the release DAG (dag.test) against the live local stack, windows compressed."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
import yaml
from airflow.sdk.definitions.param import ParamValidationError
from tenacity import retry, retry_if_exception_type, retry_if_result, stop_after_delay, wait_fixed

from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.polling import poll_until
from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.spec import Phase, load_spec
from sap_llm_release.templates import render
from tests.support.approvals import Approver, SlackClicker, click_body, signed
from tests.support.required_actions import RequiredActionAnswer
from tests.support.runs import SPEC_FILE, attestations, release_conf, release_id, run_release, write_traffic_spec
from tests.support.stack import BLUE_VERSION, ReloadThatDoesNotTakeEffect

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]
SPEC = load_spec(SPEC_FILE)
STEPS = [step.weight for step in SPEC.traffic.steps]
APPROVALS = [approval.name for approval in SPEC.approvals]


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


def test_clean_release_promotes_and_the_next_goes_to_the_free_slot(quiet_stack, ledger, notifications, tmp_path,
                                                                  monkeypatch):
    dag_run, states = run_release(release_conf())

    assert dag_run.state == "success", _failed(states)
    assert all(states[f"traffic_shift.shift_to_{w:03d}"] == "success" for w in STEPS)
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
    assert [(w["step"], w["green_weight"], w["verdict"]) for w in record["slo_windows"]] == [
        ("clear_before_deploy", 0, "passed"), ("clear_before_shift", 0, "passed")] + [  # no alert fired before
        (f"step_{w:03d}", w, "passed") for w in STEPS] + [("bake", 100, "passed")]  # the bake, blue still up
    verdicts = {row["gate"]: row["verdict"] for row in record["gate_results"]}
    assert len(verdicts) == len(SPEC.gates)
    waived = {w.gate for w in SPEC.profile("rehearsal").waivers}
    assert {g for g, v in verdicts.items() if v == "waived"} == waived
    assert {g for g, v in verdicts.items() if v == "attested"} == set(attestations())
    assert "failed" not in verdicts.values()
    assert verdicts["smoke_documents"] == "passed" and verdicts["business_touchless_rate"] == "passed"
    events = [e["event"] for e in record["release_events"]]
    assert events == ["started", "green_deployed", "green_ready", "blue_decommissioned", "promoted"]
    assert record["rollbacks"] == []
    slack, pagerduty = notifications
    thread = slack_thread(slack, dag_run.run_id)
    assert thread[0] == "Release of sap-llm 1.1.0 to rehearsal started by dag_test"
    shifts = zip([0, *STEPS], STEPS, strict=False)
    assert [t for t in thread if t.startswith("traffic:")] == [
        f"traffic: {after} % on green 1.1.0 (was {before} %)" for before, after in shifts]
    assert thread[1].startswith("*first_shift_go: approved* by <@U0RELMGR01> (slack)")
    assert thread[2].startswith("every gate before traffic let the release through:\nmodel_validation: ")
    approvals = [(a["gate"], a["decision"], a["decided_by"], a["channel"]) for a in record["approvals"]]
    assert approvals == [(name, "approved", "slack:U0RELMGR01", "slack") for name in APPROVALS]
    requests = record["approval_requests"]
    assert [r["approval"] for r in requests] == APPROVALS and all(r["slack_ts"] for r in requests)
    assert "green serves 50 % of traffic" in requests[1]["evidence"]  # the evidence shown with the buttons
    asked = [p for p in slack.calls("chat.postMessage") if "approval:" in str(p.get("blocks"))]
    assert [p["text"].split(":")[0] for p in asked[-3:]] == ["Approval needed"] * 3
    updates = [u for u in slack.calls("chat.update") if u["ts"] in {r["slack_ts"] for r in requests}]
    assert [u["text"].split(":")[0] for u in updates] == [f"*{name}" for name in APPROVALS]
    assert thread[-2].startswith("post-deployment validation: post_deployment: ")
    assert thread[-1].startswith("release promoted: 1.1.0 serves 100% of rehearsal")
    assert pages(pagerduty, dag_run.run_id) == []  # nobody is paged for a good release
    jobs = {row["job"]: row for row in record["job_results"]}
    assert set(jobs) == {"dataset_audit", "model_evaluation", "weights_verification", "green_smoke", "load_test"}
    assert all(row["exit_code"] == 0 and row["passed"] for row in jobs.values())
    assert verdicts["language_decoder_json_schema_compliance"] == "passed"  # measured, not waived
    assert {gate: verdicts[gate] for gate in ("training_data_split_70_15_15", "training_data_no_leakage",
                                              "training_data_provenance_tracked")} == dict.fromkeys(
        ("training_data_split_70_15_15", "training_data_no_leakage", "training_data_provenance_tracked"), "passed")

    # The next release goes to the slot that is free now (blue), with the slot that was green as production; which
    # slot is which does not depend on the gates, so it runs on the spec cut to what happens once traffic moves.
    monkeypatch.setenv("SAP_LLM_RELEASE_SPEC", str(write_traffic_spec(tmp_path / "traffic-spec.yaml")))
    second, states = run_release(release_conf(version="1.2.0"))

    assert second.state == "success", _failed(states)
    assert ledger.blue_slot(release_id(dag_run)) == "blue" and ledger.blue_slot(release_id(second)) == "green"
    assert target.router.get_weights() == ALL_BLUE  # slots named as themselves: the blue slot serves everything
    assert target.deployer.running_version("blue") == "1.2.0"
    assert target.deployer.running_version("green") is None
    second_record = ledger.release_record(release_id(second))
    assert [c["green_after"] for c in second_record["traffic_changes"]] == STEPS
    assert {row["verdict"] for row in second_record["gate_results"]} == {"passed", "waived", "attested"}


@pytest.mark.parametrize("breach_at", [step for step in STEPS if step != 20])  # 20: on the cluster, same DAG
def test_slo_breach_at_any_step_rolls_back_to_blue(quiet_stack, traffic_spec, ledger, breach_at, notifications):
    production_version = quiet_stack.target.deployer.running_version("blue")
    quiet_stack.when_green_weight(breach_at, lambda: quiet_stack.set_faults("green", error_rate=1.0))

    dag_run, states = run_release(release_conf())

    assert states[f"traffic_shift.shift_to_{breach_at:03d}"] == "failed"
    record = rolled_back_to_blue(quiet_stack, ledger, dag_run, states, production_version)
    windows = {w["green_weight"]: w for w in record["slo_windows"]}
    assert windows[breach_at]["verdict"] == "failed" and "error_rate" in windows[breach_at]["reason"]
    assert [c["green_after"] for c in record["traffic_changes"]] == [w for w in STEPS if w <= breach_at] + [0]
    assert f"step_{breach_at:03d}" in record["rollbacks"][0]["cause"]
    taken_off_green_where_decided(quiet_stack, record, f"traffic_shift.shift_to_{breach_at:03d}")
    announced = [n for n in record["notifications"] if n["channel"] == "alertmanager"]  # green's alerts inhibited
    assert [(n["kind"], n["status"]) for n in announced] == [("SapLlmReleaseRollingBack", "sent")], announced
    slack, pagerduty = notifications
    key = f"sap-llm-release/{release_id(dag_run)}"
    assert pages(pagerduty, dag_run.run_id) == [("trigger", key), ("resolve", key)]  # paged once, resolved
    assert any(text.startswith("rolled back to blue") for text in slack_thread(slack, dag_run.run_id))


def test_a_regression_during_the_bake_rolls_back_to_blue(quiet_stack, traffic_spec, ledger, notifications):
    """Green passed every step and serves everything; errors start in the bake that follows, while blue is still
    up: the bake fails and the router goes back to blue, instead of a redeploy."""
    production_version = quiet_stack.target.deployer.running_version("blue")
    _when_baking(ledger, lambda: quiet_stack.set_faults("green", error_rate=1.0))

    dag_run, states = run_release(release_conf())

    assert states["traffic_shift.shift_to_100"] == "success" and states["post_deployment.bake_green"] == "failed"
    post_deployment = {gate.name for gate in SPEC.gates if gate.phase is Phase.POST_DEPLOYMENT}
    assert {f"post_deployment.{name}" for name in post_deployment} <= {
        task for task, state in states.items() if state == "success"}  # validated, then the bake caught it
    record = rolled_back_to_blue(quiet_stack, ledger, dag_run, states, production_version)
    windows = {w["step"]: w for w in record["slo_windows"]}
    assert windows["step_100"]["verdict"] == "passed"
    assert windows["bake"]["verdict"] == "failed" and "error_rate" in windows["bake"]["reason"]
    assert windows["bake"]["green_weight"] == 100
    assert record["rollbacks"][0]["cause"].startswith("bake: SLO error_rate failed")
    taken_off_green_where_decided(quiet_stack, record, "post_deployment.bake_green")


def _inject_noise(stack, ledger, noise: str) -> None:
    """Noise under the thresholds on green: 0.5 % of its requests failing from the first shift on (two errors among
    a window's requests now and then read above 1 %); or, from the second step on, a scrape of green failed at every
    shift and in the bake (one per Prometheus) and every answer 1.1 s late (its 95th percentile read at 1.475 s
    against 1.5 s). Not in the first window: 30 minutes compressed to 4 s from the shift, it holds two checks, and
    at 1 request a second green's first answers are scraped by the second; a missed scrape or slow answers then
    leave its P95 without data twice, which fails (no data is no pass)."""
    if noise == "errors":
        stack.when_green_weight(STEPS[0], lambda: stack.set_faults("green", error_rate=0.005))
        return
    for weight in STEPS[1:]:
        stack.when_green_weight(weight, lambda: stack.set_faults("green", added_latency_s=1.1, failed_scrapes=3))
    _when_baking(ledger, lambda: stack.set_faults("green", added_latency_s=1.1, failed_scrapes=3))


def _green_scrapes_missed(stack) -> float:
    """Scrapes of green that failed over the last ten minutes, on the Prometheus the release asks."""
    up = 'up{job="sap-llm",colour="green"}'
    return stack.query(f"sum(count_over_time({up}[10m]) - sum_over_time({up}[10m]))") or 0.0


@pytest.mark.parametrize("noise", ["errors", "latency_and_missed_scrapes"])
def test_noise_under_the_thresholds_never_rolls_back(quiet_stack, traffic_spec, ledger, noise):
    """A healthy green with noise under every threshold passes each window and promotes: a breach its counts do
    not make significant is noise (``counts`` in the spec), a missed scrape is one failed check of the health's
    limit of two."""
    _inject_noise(quiet_stack, ledger, noise)

    dag_run, states = run_release(release_conf())

    assert dag_run.state == "success", _failed(states)
    record = ledger.release_record(release_id(dag_run))
    assert [(w["step"], w["verdict"]) for w in record["slo_windows"]] == [
        ("clear_before_deploy", "passed"), ("clear_before_shift", "passed")] + [
        (f"step_{w:03d}", "passed") for w in STEPS] + [("bake", "passed")], [w["reason"] for w in record["slo_windows"]]
    assert [c["green_after"] for c in record["traffic_changes"]] == STEPS and record["rollbacks"] == []
    assert record["release_events"][-1]["event"] == "promoted"
    checks = {w["step"]: {c["name"]: c for c in json.loads(w["checks_json"])} for w in record["slo_windows"]}
    if noise == "latency_and_missed_scrapes":  # the noise reached the windows: P95 just under its bound, scrapes lost
        assert 1.0 < checks["step_100"]["p95_latency"]["worst"] < 1.5, checks["step_100"]["p95_latency"]
        assert _green_scrapes_missed(quiet_stack) >= 1


def taken_off_green_where_decided(stack, record: dict, watch_task: str) -> None:
    """The window's trigger sent all traffic to blue as it decided the breach: the last traffic change is the
    breach's, written by the watching task, before the rollback task started, and nginx sent green nothing after
    it (its log's last request to green is older than the rollback's start)."""
    switch = record["traffic_changes"][-1]
    assert (switch["reason"], switch["task_id"], switch["green_after"]) == ("breach", watch_task, 0)
    assert [e["task_id"] for e in record["release_events"] if e["event"] == "breach_decided"] == [watch_task]
    rollback_started = datetime.fromisoformat(record["rollbacks"][0]["started_at"])
    assert datetime.fromisoformat(switch["changed_at"]) < rollback_started
    last_to_green = float(stack.requests_sent_to("green")[-1].split(" ", 1)[0])
    assert last_to_green < rollback_started.timestamp(), (last_to_green, rollback_started)


def rolled_back_to_blue(stack, ledger, dag_run, states, production_version: str) -> dict:
    """The release failed and rolled back: blue serves everything at its production version, green is gone, blue was
    not decommissioned, one complete rollback and the outcome are recorded; after it, blue's recovery window passed
    and no request was lost while traffic switched (the router's log counted some). Returns the release's record."""
    assert dag_run.state == "failed"
    assert states["rollback.rollback_to_blue"] == "success" and states["decommission_blue.remove_blue"] == "skipped"
    assert stack.target.router.get_weights() == ALL_BLUE
    assert stack.target.deployer.running_version("green") is None
    assert stack.target.deployer.running_version("blue") == production_version
    record = ledger.release_record(release_id(dag_run))
    (rollback,) = record["rollbacks"]
    assert rollback["blue_weight_after"] == 100 and rollback["blue_healthy"] == 1 and rollback["green_removed"] == 1
    assert record["release_events"][-1]["event"] == "rolled_back"
    assert (states["rollback.watch_blue_recovery"], states["rollback.count_lost_requests"]) == ("success", "success")
    (recovery,) = [window for window in record["slo_windows"] if window["step"] == "rollback_recovery"]
    assert (recovery["verdict"], recovery["green_weight"]) == ("passed", 0)
    assert {check["name"] for check in json.loads(recovery["checks_json"])} == {"blue_ready", "error_rate",
                                                                                 "p95_latency"}
    (counted,) = record["rollback_lost_requests"]
    assert (counted["verdict"], counted["lost"]) == ("passed", 0) and counted["requests"] > 0, counted
    return record


def stopped_before_traffic(stack, ledger, dag_run, states, failed_gate: str) -> dict:
    """The release failed at ``failed_gate`` (a task id) and touched nothing: no shift, blue at 100 %, no green, no
    traffic change or rollback recorded. Returns the release's record."""
    assert dag_run.state == "failed"
    assert set(_failed(states)) == {failed_gate, "finish_release"}
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert stack.target.router.get_weights() == ALL_BLUE
    assert stack.target.deployer.running_version("green") is None
    record = ledger.release_record(release_id(dag_run))
    assert record["traffic_changes"] == [] and record["rollbacks"] == []
    return record


def test_gate_failure_before_traffic_touches_nothing(fresh_stack, traffic_spec, ledger):
    """An attestation missing from the conf is asked of its role on the Required Actions page; the ML lead ticks it
    there without a link to its evidence, so its gate fails; on the spec cut to what happens once traffic moves,
    which keeps that gate (the clean release shows every other gate of the full spec passing)."""
    missing = "reasoning_engine_chain_of_thought_quality"
    item = load_spec(traffic_spec).gate(missing).item
    with RequiredActionAnswer("sap_llm_release", "attestations.attest_ml_lead", "ml.lead", [item],
                              {f"link_{missing}": None}) as answer:
        dag_run, states = run_release(release_conf(attestations=attestations(skip=(missing,))))
    assert answer.answered.is_set() and answer.error is None, answer.error

    record = stopped_before_traffic(fresh_stack, ledger, dag_run, states, f"model_validation.{missing}")
    assert states["attestations.attest_ml_lead"] == "success"
    assert states["rollback.rollback_to_blue"] == "skipped"
    (final,) = [e for e in record["release_events"] if e["event"] == "failed"]
    assert f"gate {missing} failed" in final["detail"] and "ML lead must attest" in final["detail"]
    assert "ticked by ml.lead (ML lead) without a valid link to its evidence" in final["detail"]
    asked = [e["detail"] for e in record["release_events"] if e["event"] == "attestations_asked"]
    assert asked == [f"ML lead: confirm 1 checklist item for sap-llm 1.1.0: {missing}; only ml.lead may answer"]


def test_a_dry_run_checks_the_gates_records_the_plan_and_changes_nothing(fresh_stack, traffic_spec, ledger,
                                                                         notifications):
    slack, pagerduty = notifications
    posts_before = len(slack.calls("chat.postMessage"))
    unattested = "reasoning_engine_chain_of_thought_quality"  # a dry run asks no one: its plan says who it would ask
    dag_run, states = run_release(release_conf(dry_run=True, attestations=attestations(skip=(unattested,))))

    assert dag_run.state == "success" and states["dry_run_plan"] == "success"
    assert states["attestations.attest_ml_lead"] == states[f"model_validation.{unattested}"] == "success"
    after_the_plan = {state for task, state in states.items() if task.startswith(("deploy_green.", "traffic_shift."))}
    assert after_the_plan == {"skipped"}  # the deploy and traffic tasks are there, and none ran
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    assert fresh_stack.target.deployer.running_version("green") is None
    record = ledger.release_record(release_id(dag_run))
    assert record["traffic_changes"] == [] and record["approval_requests"] == [] and record["rollbacks"] == []
    verdicts = {row["verdict"] for row in record["gate_results"]}
    assert "passed" in verdicts and verdicts <= {"passed", "attested", "waived"}  # the pre-traffic gates were checked
    assert unattested not in {row["gate"] for row in record["gate_results"]}  # not asked, so not recorded
    events = {event["event"]: event["detail"] for event in record["release_events"]}
    assert "attestations_asked" not in events
    plan = events["dry_run_plan"].splitlines()
    assert plan[0] == (f"1. at the start: ask the ML lead (ml.lead) on the Required Actions page to confirm "
                       f"{unattested} (not given with the trigger), within 10 min")
    assert plan[1].startswith("2. before deploying: wait for no alert of ALERTS{")
    assert plan[2].startswith("3. deploy sap-llm 1.1.0 to the green slot (green) of rehearsal")
    shifts = [line.split(". ", 1)[1].split(",")[0] for line in plan if ". send " in line]
    assert shifts == ["send 5 % to green", "send 20 % to green", "send 50 % to green", "send 100 % to green"]
    assert plan[-1].startswith(f"{len(plan)}. on a failure once traffic moved: all traffic back to blue")
    assert events["planned"].startswith("dry run of 1.1.0 to rehearsal:") and "dry run" in events["started"]
    (posted,) = slack.calls("chat.postMessage")[posts_before:]  # the plan is the one message a dry run sends
    assert posted["text"].startswith("Dry run of sap-llm 1.1.0 to rehearsal") and plan[-1] in posted["text"]
    assert pages(pagerduty, dag_run.run_id) == []
    assert ledger.environment_holder("rehearsal") is None  # a dry run holds no environment


def spent_budget(stack) -> float | None:
    """The lowest 30-day error budget remaining of the stack's SLOs, asked as the gate asks it (None until the SLO
    rules recorded a budget for every SLO)."""
    import httpx

    query = render(SPEC.gate("error_budget_remaining").params["query"], service=SPEC.service)
    answer = httpx.get(f"{stack.prometheus_url}/api/v1/query", timeout=5, params={"query": query}).json()
    found = answer["data"]["result"]
    return float(found[0]["value"][1]) if found else None


def test_a_release_is_refused_before_anything_is_touched_while_the_error_budget_is_spent(
        fresh_stack, traffic_spec, ledger, tmp_path, monkeypatch):
    import yaml

    data = yaml.safe_load(traffic_spec.read_text())
    data["gates"].append(load_spec(SPEC_FILE).gate("error_budget_remaining").model_dump(mode="json",
                                                                                       exclude_none=True))
    (tmp_path / "budget-spec.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("SAP_LLM_RELEASE_SPEC", str(tmp_path / "budget-spec.yaml"))
    fresh_stack.set_faults("blue", error_rate=1.0)  # every document fails until the 30-day budget (1 %) is spent
    try:
        fresh_stack.restart_monitoring()  # a history of failures only: spent at the SLO rules' first evaluations
        retry(stop=stop_after_delay(60), wait=wait_fixed(2),
              retry=retry_if_result(lambda left: left is None or left >= 0))(spent_budget)(fresh_stack)
    finally:
        fresh_stack.set_faults("blue", error_rate=0.0)

    dag_run, states = run_release(release_conf())

    record = stopped_before_traffic(fresh_stack, ledger, dag_run, states, "preflight.error_budget_remaining")
    (gate,) = [row for row in record["gate_results"] if row["gate"] == "error_budget_remaining"]
    assert gate["verdict"] == "failed" and gate["measured_value"] < 0


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


def test_prometheus_unreachable_during_a_window_rolls_back(fresh_stack, traffic_spec, ledger):
    fresh_stack.when_green_weight(5, fresh_stack.kill_prometheus)

    dag_run, states = run_release(release_conf())

    assert states["traffic_shift.shift_to_005"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    record = ledger.release_record(release_id(dag_run))
    window, recovery = [w for w in record["slo_windows"] if not w["step"].startswith("clear_before_")]
    assert window["verdict"] == "failed" and "Prometheus" in window["reason"]
    # nor can blue's recovery be shown without Prometheus: that fails too, and the rollback's outcome says so
    assert (recovery["step"], recovery["verdict"]) == ("rollback_recovery", "failed")
    assert states["rollback.watch_blue_recovery"] == "failed"
    assert "after the rollback, failed: rollback.watch_blue_recovery" in record["release_events"][-1]["detail"]


def test_a_green_killed_during_a_window_fails_it_and_rolls_back_without_shifting_further(quiet_stack, traffic_spec,
                                                                                          ledger):
    """Green's process dies a moment into the 20 % window: its last samples still fill the rate window and nginx
    retries its requests on blue, so only green's own health (scraped, fresh, answering) can tell."""
    killed: dict[str, float] = {}

    def kill_green_once_it_served() -> None:
        time.sleep(2)  # green answers its share for a moment first, so the rate window holds its samples
        killed["at"] = quiet_stack.kill("green")

    quiet_stack.when_green_weight(20, kill_green_once_it_served)

    dag_run, states = run_release(release_conf())

    assert killed, "green was never killed"
    assert dag_run.state == "failed"
    assert states["traffic_shift.shift_to_020"] == "failed"
    assert states["traffic_shift.shift_to_050"] == "upstream_failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert quiet_stack.target.router.get_weights() == ALL_BLUE

    record = ledger.release_record(release_id(dag_run))
    assert [c["green_after"] for c in record["traffic_changes"]] == [5, 20, 0]  # nothing more sent to dead green
    window = {w["green_weight"]: w for w in record["slo_windows"]}[20]
    assert window["verdict"] == "failed"
    assert any(health in window["reason"] for health in ("green_scraped", "green_fresh", "green_ready"))
    (rollback,) = record["rollbacks"]
    assert rollback["blue_healthy"] == 1 and "step_020" in rollback["cause"]
    # `nginx -s reload` returns as the master is signalled; its old worker may take requests a moment longer
    rolled_back_at = datetime.fromisoformat(record["traffic_changes"][-1]["changed_at"]).timestamp() + 1
    assert quiet_stack.requests_sent_to("green", since=rolled_back_at) == []
    assert quiet_stack.requests_sent_to("green", since=killed["at"] - 2)  # green had its share before it died


def _when(seen, action, wait_s: float) -> threading.Thread:
    """Run ``action()`` in the background as soon as ``seen()`` is true (looked at every ``wait_s``, for up to five
    minutes; an error while the ledger is being written means: look again)."""

    @retry(retry=retry_if_exception_type(Exception) | retry_if_result(lambda done: not done),
           stop=stop_after_delay(300), wait=wait_fixed(wait_s), retry_error_callback=lambda state: False)
    def watch() -> bool:
        return bool(seen())

    thread = threading.Thread(target=lambda: watch() and action(), daemon=True)
    thread.start()
    return thread


def _when_baking(ledger: Ledger, action) -> threading.Thread:
    """Run ``action()`` once a release started from now on has recorded every post-deployment gate: its bake, the
    next task, has begun."""
    since = datetime.now(timezone.utc)
    post_deployment = {gate.name for gate in SPEC.gates if gate.phase is Phase.POST_DEPLOYMENT}

    def baking() -> bool:
        releases = ledger.releases_recorded_between(since, datetime.now(timezone.utc), SPEC.service)
        return bool(releases) and post_deployment <= set(ledger.gate_verdicts(releases[-1]["release_id"]))

    return _when(baking, action, wait_s=0.05)


def _when_window_passed(ledger: Ledger, weight: int, action) -> threading.Thread:
    """Run ``action()`` as soon as the ledger holds a passed window at ``weight`` % from now on."""
    since = datetime.now(timezone.utc).isoformat()
    return _when(lambda: any(window["green_weight"] == weight and window["verdict"] == "passed"
                             for window in ledger.slo_windows_recorded_since(since)), action, wait_s=0.02)


def test_a_green_dead_before_a_shift_is_not_shifted_to(quiet_stack, traffic_spec, ledger):
    """Green dies between its 5 % window passing and the shift to 20 %: the shift asks green first and fails."""
    killed: dict[str, float] = {}
    ledger.migrate()
    _when_window_passed(ledger, 5, lambda: killed.setdefault("at", quiet_stack.kill("green")))

    dag_run, states = run_release(release_conf())

    assert killed, "green was never killed"
    assert dag_run.state == "failed"
    assert states["traffic_shift.shift_to_005"] == "success"
    assert states["traffic_shift.shift_to_020"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert quiet_stack.target.router.get_weights() == ALL_BLUE

    record = ledger.release_record(release_id(dag_run))
    assert [c["green_after"] for c in record["traffic_changes"]] == [5, 0]
    (refused,) = [e for e in record["release_events"] if e["event"] == "green_not_ready_before_shift"]
    assert refused["detail"].startswith("step 20%: local green deployment is not running")
    rolled_back_at = datetime.fromisoformat(record["traffic_changes"][-1]["changed_at"]).timestamp() + 1
    assert quiet_stack.requests_sent_to("green", since=rolled_back_at) == []


def _not_applied(record: dict, event: str) -> str:
    (detail,) = [e["detail"] for e in record["release_events"] if e["event"] == event]
    return detail


def test_a_reload_that_does_not_take_effect_is_not_recorded_as_done(quiet_stack, traffic_spec, ledger, notifications):
    """After the first shift nginx accepts a reload its master cannot apply (a listen address taken): the next shift
    fails naming the wanted and the live split, blue is never decommissioned, and the rollback (whose reload applies)
    starts from the split nginx really served."""
    breaker = ReloadThatDoesNotTakeEffect(quiet_stack.dir, once=True)
    quiet_stack.when_green_weight(5, breaker.arm)
    try:
        dag_run, states = run_release(release_conf())
    finally:
        breaker.disarm()

    assert breaker.failed_reloads == 1  # nginx's error log: "still could not bind()"
    assert dag_run.state == "failed"
    assert states["traffic_shift.shift_to_005"] == "success"
    assert states["traffic_shift.shift_to_020"] == "failed"
    assert states["traffic_shift.shift_to_050"] == "upstream_failed"
    assert states["decommission_blue.remove_blue"] in ("skipped", "upstream_failed")
    assert states["rollback.rollback_to_blue"] == "success"
    target = quiet_stack.target
    assert target.router.get_weights() == ALL_BLUE
    assert target.deployer.running_version("blue") == BLUE_VERSION
    assert target.deployer.running_version("green") is None

    record = ledger.release_record(release_id(dag_run))
    changes = [(c["reason"], c["blue_before"], c["green_before"], c["blue_after"], c["green_after"])
               for c in record["traffic_changes"]]
    assert changes == [("step 5%", 100, 0, 95, 5), ("rollback", 95, 5, 100, 0)]
    not_applied = _not_applied(record, "traffic_not_applied")
    assert "wanted blue 80% / green 20%, live blue 95% / green 5%" in not_applied
    assert "still could not bind()" in not_applied
    (rollback,) = record["rollbacks"]
    assert rollback["blue_weight_after"] == 100 and rollback["blue_healthy"] == 1
    assert "shift_to_020" in rollback["cause"] and "shift_to_050" not in rollback["cause"]  # not the tasks below it
    assert "blue_decommissioned" not in [e["event"] for e in record["release_events"]]


def test_reloads_that_keep_not_taking_effect_end_in_a_loud_failure(quiet_stack, traffic_spec, ledger, notifications):
    """Every reload after the first shift fails in nginx's master: the shift and the rollback both fail naming the
    live split, which the ledger holds; blue is never decommissioned, green (still serving its 5 %) is not removed,
    and on-call is paged."""
    breaker = ReloadThatDoesNotTakeEffect(quiet_stack.dir, once=False)
    quiet_stack.when_green_weight(5, breaker.arm)
    try:
        dag_run, states = run_release(release_conf())
        target = quiet_stack.target
        live, green_version = target.router.get_weights(), target.deployer.running_version("green")
    finally:
        breaker.disarm(await_failures=2)

    events = [(e["event"], e["detail"]) for e in ledger.release_record(release_id(dag_run))["release_events"]]
    assert breaker.failed_reloads == 2, events  # the shift's and the rollback's
    assert dag_run.state == "failed"
    assert states["traffic_shift.shift_to_020"] == "failed"
    assert states["rollback.rollback_to_blue"] == "failed"
    assert states["decommission_blue.remove_blue"] in ("skipped", "upstream_failed")
    assert live == Weights(95, 5) and green_version == "1.1.0"
    assert target.deployer.running_version("blue") == BLUE_VERSION

    record = ledger.release_record(release_id(dag_run))
    assert [c["green_after"] for c in record["traffic_changes"]] == [5]
    assert "wanted blue 80% / green 20%, live blue 95% / green 5%" in _not_applied(record, "traffic_not_applied")
    assert "wanted blue 100% / green 0%, live blue 95% / green 5%" in _not_applied(record, "rollback_not_applied")
    assert record["release_events"][-1]["event"] == "rollback_failed"
    slack, pagerduty = notifications
    key = f"sap-llm-release/{release_id(dag_run)}"
    assert ("trigger", key) in pages(pagerduty, dag_run.run_id)
    assert ("resolve", key) not in pages(pagerduty, dag_run.run_id)
    assert any(text.startswith("rollback failed:") for text in slack_thread(slack, dag_run.run_id))


def test_a_release_waits_for_a_paging_alert_to_clear_then_refuses_naming_it_and_deploys_nothing(
        fresh_stack, traffic_spec, ledger, notifications):
    """Blue answers every document with a 500 until the availability SLO pages (on a Prometheus started afresh, so
    the page comes within seconds) and 10 s more (the page then holds for about a minute of good answers); a
    release started then waits the spec's wait (4 s here) for the page to clear, refuses naming it, and moves
    nothing: green never deployed, blue keeps all traffic."""
    spec = yaml.safe_load(traffic_spec.read_text())
    spec["analysis"]["clear_before_traffic"]["wait"] = "4s"
    traffic_spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    fresh_stack.restart_monitoring()
    fresh_stack.set_faults("blue", error_rate=1.0)
    try:
        assert poll_until(fresh_stack.critical_alerts, bool, timeout_s=90, interval_s=1), "nothing paged"
        time.sleep(10)
        fresh_stack.set_faults("blue")  # blue answers again: the release's own gates pass
        dag_run, states = run_release(release_conf())
    finally:
        fresh_stack.set_faults("blue")
        fresh_stack.forget_alerts()

    assert dag_run.state == "failed"
    assert states["deploy_green.clear_before_deploy"] == "failed"
    assert states["deploy_green.deploy_green"] == "upstream_failed"
    assert fresh_stack.target.deployer.running_version("green") is None
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    record = ledger.release_record(release_id(dag_run))
    (window,) = record["slo_windows"]
    assert (window["step"], window["verdict"], window["green_weight"]) == ("clear_before_deploy", "failed", 0)
    assert window["window_seconds"] >= 4
    assert "still firing: SapLlmAvailabilityErrorBudgetBurnPage{" in window["reason"]
    assert record["traffic_changes"] == [] and ledger.release_outcome(release_id(dag_run))["event"] == "failed"
    slack, _ = notifications
    assert any("refusing to move traffic into an incident" in text for text in slack_thread(slack, dag_run.run_id))


@pytest.mark.parametrize("field, value", [
    ("version", "latest"),
    ("version", "1.\uff11.0"),  # a full-width digit
    ("version", "1.1.0-" + "a" * 58),  # 64 characters: longer than a Kubernetes label value
    ("version", "1.1.0\n"),
    ("requested_by", "release-tester\nINFO - approved by cto"),
    ("requested_by", "   "),
])
def test_invalid_trigger_params_are_refused_naming_the_field(fresh_stack, ledger, field, value):
    with pytest.raises(ParamValidationError, match=field):
        run_release(release_conf(**{field: value}))
    assert fresh_stack.target.deployer.running_version("green") is None
    assert fresh_stack.target.router.get_weights() == ALL_BLUE


def test_production_environment_needs_production_profile(fresh_stack, ledger):
    dag_run, states = run_release(release_conf(environment="production"))

    assert states["start_release"] == "failed"
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert fresh_stack.target.router.get_weights() == ALL_BLUE
    assert ledger.release(release_id(dag_run)) is None


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


def _hitl_answer(row: dict) -> str | None:
    from tests.support.approvals import load_plugin

    return load_plugin().AirflowHITL().answer(row)


def _answer_in_airflow_ui(row: dict, user: str) -> None:
    """The Required Actions page's call: Airflow's public REST API, as an Airflow user with a JWT."""
    from airflow.api_fastapi.app import create_app, init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="admin"))
    response = TestClient(create_app("core")).patch(
        f"/api/v2/dags/{row['dag_id']}/dagRuns/{row['run_id']}/taskInstances/{row['task_id']}/-1/hitlDetails",
        json={"chosen_options": ["Approve"], "params_input": {}}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


def test_a_breach_while_an_approval_is_pending_rolls_back_without_any_answer(quiet_stack, traffic_spec, ledger,
                                                                             notifications):
    slack, pagerduty = notifications
    approver = Approver(
        ledger, SlackClicker(), answers={},  # nobody answers full_traffic_go
        on_open={"first_shift_go": lambda row: _answer_in_airflow_ui(row, "release-manager"),
                 "full_traffic_go": lambda row: quiet_stack.set_faults("green", error_rate=1.0)},
    )
    dag_run, states = run_release(release_conf(), approver)

    assert approver.errors == [] and approver.opened == ["first_shift_go", "full_traffic_go"]
    assert dag_run.state == "failed"
    assert states["traffic_shift.approve_first_shift_go"] == "success"  # answered in the UI
    assert states["traffic_shift.approve_full_traffic_go"] == "failed"
    assert states["traffic_shift.shift_to_100"] == "upstream_failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert quiet_stack.target.router.get_weights() == ALL_BLUE
    assert quiet_stack.target.deployer.running_version("green") is None

    record = ledger.release_record(release_id(dag_run))
    decisions = [(a["gate"], a["decision"], a["decided_by"], a["channel"]) for a in record["approvals"]]
    assert decisions == [("first_shift_go", "approved", "release-manager", "airflow"),
                         ("full_traffic_go", "superseded", "system", "system")]
    assert "error_rate" in record["approvals"][1]["detail"]
    guard = next(w for w in record["slo_windows"] if w["step"] == "approval_full_traffic_go")
    assert (guard["green_weight"], guard["verdict"]) == (50, "failed")
    assert [c["green_after"] for c in record["traffic_changes"]] == [5, 20, 50, 0]
    request = ledger.approval_request(release_id(dag_run), "full_traffic_go")
    assert _hitl_answer(request) == "Reject by the timeout"  # closed in Airflow: nobody can answer it any more
    late = SlackClicker().click(release_id(dag_run), "full_traffic_go", "approve").json()
    assert (late["ok"], late["status"]) == (False, 409)  # told what decided: the breach, not Airflow's default
    assert late["text"].startswith("full_traffic_go was already answered: superseded by the SLO analysis: ")
    update = next(u for u in slack.calls("chat.update") if u["ts"] == request["slack_ts"])
    assert update["text"].startswith("*full_traffic_go: superseded* by system (system)")
    key = f"sap-llm-release/{release_id(dag_run)}"
    assert pages(pagerduty, dag_run.run_id) == [("trigger", key), ("resolve", key)]


def test_slack_callbacks_are_checked_before_anything_is_resolved(fresh_stack, traffic_spec, ledger, notifications):
    """Each bad request is refused with nothing resolved and a ledger record; then a group member rejects, and the
    release ends without touching traffic."""
    slack, _ = notifications
    slack.user_groups = {"S0RELENG01": ["U0GROUPMEM1", "U0DAGTEST1"]}  # the trigger is an approver, too
    clicker = SlackClicker(response_url=slack.response_url)
    seen: list[tuple[str, int, str, str | None]] = []

    def refuse_then_reject(row: dict) -> None:
        release, name = row["release_id"], row["approval"]
        approve = click_body(release, name, user="U0STRANGER", response_url=slack.response_url)
        oversized = click_body(release, name, response_url="x" * 70_000)
        cases = {
            "bad signature": (approve, signed(approve, secret="not-the-signing-secret")),
            "stale timestamp": (approve, signed(approve, timestamp=int(time.time()) - 301)),
            "malformed payload": (b"payload=%7Bnot-json", signed(b"payload=%7Bnot-json")),
            "oversized body": (oversized, signed(oversized)),
            "unknown user": (approve, signed(approve)),
            "self-approval": (click_body(release, name, user="U0DAGTEST1", response_url=slack.response_url), None),
        }
        for case, (body, headers) in cases.items():
            reply = clicker.post(body, headers or signed(body))
            seen.append((case, reply.json()["status"], reply.json()["text"], _hitl_answer(row)))
        reject = click_body(release, name, "reject", user="U0GROUPMEM1", response_url=slack.response_url)
        headers = signed(reject)
        seen.append(("reject", *(lambda r: (r["status"], r["text"]))(clicker.post(reject, headers).json()),
                     _hitl_answer(row)))
        reply = clicker.post(reject, headers).json()
        seen.append(("replay", reply["status"], reply["text"], None))
        reply = clicker.click(release, name, "approve", "U0RELMGR01").json()
        seen.append(("second answer", reply["status"], reply["text"], None))

    approver = Approver(ledger, clicker, answers={}, on_open={"first_shift_go": refuse_then_reject})
    dag_run, states = run_release(release_conf(), approver)

    assert approver.errors == []
    assert [(case, status) for case, status, _, _ in seen] == [
        ("bad signature", 401), ("stale timestamp", 401), ("malformed payload", 400), ("oversized body", 413),
        ("unknown user", 403), ("self-approval", 403), ("reject", 200), ("replay", 409), ("second answer", 409)]
    assert all(answer is None for case, _, _, answer in seen[:6]), "a refused request resolved the approval"
    texts = {case: text for case, _, text, _ in seen}
    assert texts["unknown user"] == "<@U0STRANGER> may not answer first_shift_go"
    assert "triggered this release and may not approve it (four eyes)" in texts["self-approval"]
    assert texts["replay"].startswith("replayed request")
    assert texts["second answer"].startswith("first_shift_go was already answered: Reject by u0groupmem1")
    assert seen[6][3] == "Reject by u0groupmem1 (Slack U0GROUPMEM1)"
    ephemeral = [r["body"]["text"] for r in slack.requests if r["path"].startswith("/actions/")]
    assert texts["unknown user"] in ephemeral and texts["self-approval"] in ephemeral

    assert dag_run.state == "failed"
    assert states["traffic_shift.approve_first_shift_go"] == "failed"
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert states["rollback.rollback_to_blue"] == "skipped"  # nothing was touched: nothing to roll back
    assert fresh_stack.target.router.get_weights() == ALL_BLUE

    release = release_id(dag_run)
    interactions = [row for row in ledger.slack_interactions() if row["release_id"] in (release, None)]
    refused = [row["detail"] for row in interactions if row["outcome"] == "refused"]
    for expected in ("invalid Slack signature", "stale request", "malformed interaction payload",
                     "request body over 65536 bytes", "may not answer", "four eyes", "already answered"):
        assert any(expected in detail for detail in refused), expected
    decisions = [(a["decision"], a["decided_by"]) for a in ledger.release_record(release)["approvals"]]
    assert ("rejected", "slack:U0GROUPMEM1") in decisions and ("refused", "slack:U0GROUPMEM1") in decisions
