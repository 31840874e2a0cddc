"""The release DAG imports cleanly, mirrors the spec, and parses without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator

from operators.approvals import ReleaseApprovalOperator
from operators.attestations import AttestationRequestOperator
from operators.sensors import AlertsClearSensor, SLOWindowSensor
from operators.traffic import ShiftTrafficOperator
from sap_llm_release.approvals.attestations import attestation_points, role_task_id
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, Phase, load_spec
from tests.support.runs import ROOT, SPEC_FILE, release_dag


@pytest.fixture(scope="module")
def dag():
    return release_dag()


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC_FILE)


def test_one_task_group_per_phase_in_checklist_order(dag):
    groups = list(dag.task_group.children)
    phases = [phase.value for phase in Phase]
    assert [g for g in groups if g in phases] == phases
    assert {"start_release", "decide_promote_or_rollback", "rollback", "finish_release"} <= set(groups)


def test_every_gate_is_a_task_in_its_phase_group(dag, spec):
    for gate in spec.gates:
        task = dag.get_task(f"{gate.phase.value}.{gate.name}")
        assert task.gate == gate.name
    gate_tasks = [t for t in dag.tasks if type(t).__name__ == "GateOperator"]
    assert len(gate_tasks) == len(spec.gates) == 122


def test_phases_run_in_order(dag):
    evaluation = dag.get_task("model_validation.run_model_evaluation")
    assert "start_release" in evaluation.upstream_task_ids
    for before, after in zip(PRE_TRAFFIC_PHASES, PRE_TRAFFIC_PHASES[1:], strict=False):
        before_ids = {t.task_id for t in dag.task_group_dict[before.value].leaves}
        for root in dag.task_group_dict[after.value].roots:
            assert before_ids <= root.upstream_task_ids


def test_each_job_runs_before_the_gates_that_read_it_and_jobs_of_a_phase_run_one_at_a_time(dag, spec):
    for gate in spec.gates:
        if gate.kind == "job_result":
            job = spec.job(gate.params["job"])
            if job.phase is gate.phase:
                task = dag.get_task(f"{gate.phase.value}.{gate.name}")
                assert f"{job.phase.value}.run_{job.name}" in task.upstream_task_ids, gate.name
    load_test = dag.get_task("smoke_green.run_load_test")
    assert load_test.upstream_task_ids == {"smoke_green.run_green_smoke"}
    assert type(load_test).__name__ == "InferenceJobOperator" and load_test.job == "load_test"


def test_traffic_steps_shift_then_watch_their_window_in_the_same_deferring_task(dag, spec):
    chain = []
    task = dag.get_task("traffic_shift.shift_to_005")
    while task.task_id.startswith("traffic_shift."):
        chain.append(task)
        downstream = [t for t in task.downstream_list if t.task_id.startswith("traffic_shift.")]
        if not downstream:
            break
        task = downstream[0]
    kinds = [(type(t), getattr(t, "weight", None)) for t in chain]
    expected = []
    for step in spec.traffic.steps:
        if step.weight == 100:
            expected.append((ReleaseApprovalOperator, None))
        expected.append((ShiftTrafficOperator, step.weight))
    assert kinds == expected
    assert issubclass(ShiftTrafficOperator, SLOWindowSensor)  # no scheduler between a shift and its watch


def test_approvals_sit_where_the_spec_puts_them_on_airflows_hitl_operator(dag, spec):
    places = {"first_shift": ("smoke_green", "traffic_shift.clear_before_shift", 0),
              "full_traffic": ("traffic_shift.shift_to_050", "traffic_shift.shift_to_100", 50),
              "decommission_blue": ("post_deployment.", "decide_promote_or_rollback", 100)}
    approvals = [t for t in dag.tasks if isinstance(t, ReleaseApprovalOperator)]
    assert len(approvals) == len(spec.approvals) == 3
    for approval in spec.approvals:
        task = next(t for t in approvals if t.approval == approval.name)
        after, before, guard_weight = places[approval.before.value]
        assert isinstance(task, ApprovalOperator) and task.options == ["Approve", "Reject"]
        assert task.defaults == ["Reject"]  # no answer in time counts as Reject
        assert all(upstream.startswith(after) for upstream in task.upstream_task_ids)
        assert task.downstream_task_ids == {before}
        assert task.guard_weight == guard_weight  # green's SLOs watched while it waits, once green has traffic


def test_each_attestation_gate_waits_for_its_roles_required_action(dag, spec):
    asks = [t for t in dag.tasks if isinstance(t, AttestationRequestOperator)]
    assert sorted((t.task_id, t.phases) for t in asks) == sorted(
        (f"{point.group}.{role_task_id(point.role)}", point.phases) for point in attestation_points(spec))
    assert all(t.upstream_task_ids == {"start_release"} for t in asks if t.task_id.startswith("attestations."))
    for gate in (gate for gate in spec.gates if gate.kind == "attestation"):
        task = dag.get_task(f"{gate.phase.value}.{gate.name}")
        ask = next(t for t in asks if gate.phase in t.phases and t.role == gate.params["role"])
        assert task.attestation_task == ask.task_id and ask.task_id in task.upstream_task_ids
        assert gate.item in ask.options and isinstance(ask, HITLOperator) and ask.multiple


def test_a_release_running_past_the_spec_deadline_pages(dag, spec):
    (alert,) = dag.deadline
    assert alert.interval == spec.deadline
    assert alert.callback.path == "operators.deadline.page_stuck_release"


def test_deploy_group_deploys_after_its_preconditions(dag):
    deploy = dag.get_task("deploy_green.deploy_green")
    preconditions = {"deploy_green.blue_environment_serving", "deploy_green.traffic_routing_configured"}
    assert preconditions <= deploy.upstream_task_ids
    assert "deploy_green.deploy_green" in dag.get_task("deploy_green.green_environment_ready").upstream_task_ids


def test_no_traffic_moves_before_the_alerts_are_clear_deferred_before_deploying_and_after_the_first_approval(dag):
    before_deploy, before_shift = (dag.get_task(f"{group}.clear_before_{what}")
                                   for group, what in (("deploy_green", "deploy"), ("traffic_shift", "shift")))
    assert isinstance(before_deploy, AlertsClearSensor) and isinstance(before_shift, AlertsClearSensor)
    assert before_deploy.downstream_task_ids == {"deploy_green.deploy_green"}
    assert before_shift.upstream_task_ids == {"traffic_shift.approve_first_shift_go"}
    assert before_shift.downstream_task_ids == {"traffic_shift.shift_to_005"}


def test_decision_and_closing_tasks_run_whatever_happened(dag):
    decide = dag.get_task("decide_promote_or_rollback")
    assert decide.trigger_rule == "all_done"
    assert set(decide.downstream_task_ids) == {"decommission_blue.blue_has_no_traffic", "rollback.rollback_to_blue"}
    assert dag.get_task("finish_release").trigger_rule == "all_done"
    assert dag.max_active_runs == 1


def test_only_the_rollback_the_watches_and_greens_deployment_are_retried(dag):
    """A rollback whose worker died is run again (each of its steps can be); a watch failed by anything but its
    analysis watches a whole window again (a failed window raises AirflowFailException: tests/operators/
    test_sensors.py), a step's shift and watch set the same weight again (never after a failed window or a breach
    switch: tests/sap_llm_release/test_rollout.py), a deployment finds green running and waits again; a gate is
    not: a gate not proven is not passed."""
    rollback = dag.get_task("rollback.rollback_to_blue")
    assert (rollback.retries, rollback.retry_delay) == (3, timedelta(seconds=5))
    watches = {"traffic_shift.clear_before_shift", "deploy_green.clear_before_deploy", "post_deployment.bake_green",
               "rollback.watch_blue_recovery", "deploy_green.deploy_green"} | {
        task.task_id for task in dag.tasks if ".shift_to_" in task.task_id}
    assert {task.task_id for task in dag.tasks if task.retries} == {"rollback.rollback_to_blue"} | watches
    assert {(dag.get_task(task).retries, dag.get_task(task).retry_delay) for task in watches} == {
        (1, timedelta(seconds=1))}


def test_trigger_form_validates_version_environment_and_profile(dag):
    params = dag.params
    assert params.get_param("version").schema["pattern"].startswith("^")
    assert params.get_param("profile").schema["enum"] == ["production", "rehearsal"]
    assert "rehearsal" in params.get_param("environment").schema["enum"]


def test_invalid_spec_fails_dag_import_naming_the_field(tmp_path):
    broken = tmp_path / "spec.yaml"
    broken.write_text(SPEC_FILE.read_text().replace("- {weight: 20, window: 1h}", "- {weight: 3, window: 1h}"))
    code = "import runpy; runpy.run_path('dags/release_sap_llm.py')"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={**_env(), "SAP_LLM_RELEASE_SPEC": str(broken)},
    )
    assert result.returncode != 0
    assert "traffic.steps" in result.stderr and "weights must increase" in result.stderr


def test_dag_file_imports_no_heavy_modules():
    code = (
        "import sys, runpy; runpy.run_path('dags/release_sap_llm.py'); "
        "print(sorted(m for m in ('torch', 'transformers', 'kubernetes', 'kubernetes_asyncio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _env():
    import os

    return dict(os.environ)


def test_every_task_the_checklist_map_names_is_in_the_dag(dag, spec):
    from sap_llm_release.checklist_map import checklist_rows

    missing = [row.task_id for row in checklist_rows(spec) if row.task_id not in dag.task_dict]
    assert missing == []
