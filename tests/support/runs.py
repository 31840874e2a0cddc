"""Run the release DAG with ``dag.test()`` and read back what happened."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from sap_llm_release.ledger import Ledger
from sap_llm_release.spec import PRE_TRAFFIC_PHASES
from tests.support.approvals import RELEASE_MANAGER, Approver, SlackClicker

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "specs" / "sap_llm.yaml"
TRAFFIC_SPEC_JOB = "dataset_audit"  # the one job the traffic rehearsals' spec keeps


def spec_file() -> Path:
    """The spec the release DAG is built from, found as the DAG file finds it (``SAP_LLM_RELEASE_SPEC``)."""
    return Path(os.environ.get("SAP_LLM_RELEASE_SPEC", SPEC_FILE))


def write_traffic_spec(path: Path) -> Path:
    """Write to ``path`` the project's spec cut down for rehearsals of what happens once traffic moves: each phase
    before green's deployment keeps its first gate that reads no job, and of the jobs only the dataset audit is left
    (a pod on a cluster, a fraction of a second; no model evaluation, no load test: the full spec's rehearsals run
    them), with the gates that read it; the audits are left out. Green's deployment, its smoke's other gates, the
    traffic plan and its analysis, the approvals and every phase after the shift are the project's."""
    data = yaml.safe_load(SPEC_FILE.read_text())
    pre_traffic = {phase.value for phase in PRE_TRAFFIC_PHASES}
    gates, phases_kept = [], set()
    for gate in data["gates"]:
        if gate["kind"] == "job_result":
            if gate["params"]["job"] == TRAFFIC_SPEC_JOB:
                gates.append(gate)
            continue
        if gate["phase"] in pre_traffic and gate["phase"] in phases_kept:
            continue
        phases_kept.add(gate["phase"])
        gates.append(gate)
    data.pop("audits", None)  # no audit runs in these rehearsals (and the accuracy review reads gates cut here)
    jobs = [job for job in data["jobs"] if job["name"] == TRAFFIC_SPEC_JOB]
    return _write_cut_spec(path, data, gates, jobs)


def _write_cut_spec(path: Path, data: dict, gates: list[dict], jobs: list[dict]) -> Path:
    """Write ``data`` to ``path`` with only ``gates`` and ``jobs``, and the profiles' waivers and scaled thresholds
    of the gates kept."""
    names = {gate["name"] for gate in gates}
    data["gates"], data["jobs"] = gates, jobs
    for profile in data["profiles"].values():
        for section in ("waivers", "scaled_thresholds"):
            profile[section] = [entry for entry in profile.get(section, []) if entry["gate"] in names]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_executor_spec(path: Path) -> Path:
    """Write to ``path`` the traffic rehearsals' spec (:func:`write_traffic_spec`) cut further for the rehearsals on
    Airflow's real components, where each task is a process of its own (about two seconds of CPU): no job, and each
    phase keeps its first gate, but green's deployment keeps all of its own. The traffic plan, its analysis, the
    approvals and the rollback are the project's."""
    data = yaml.safe_load(write_traffic_spec(path).read_text())
    kept, gates = set(), []
    for gate in data["gates"]:
        if gate["kind"] == "job_result" or (gate["phase"] in kept and gate["phase"] != "deploy_green"):
            continue
        kept.add(gate["phase"])
        gates.append(gate)
    return _write_cut_spec(path, data, gates, jobs=[])


def attestations(skip: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    spec = yaml.safe_load(spec_file().read_text())
    return {
        gate["name"]: {"by": "release-tester", "link": "file:///checklist/production-deployment.md"}
        for gate in spec["gates"]
        if gate["kind"] == "attestation" and gate["name"] not in skip
    }


def release_conf(**overrides: Any) -> dict[str, Any]:
    conf = {
        "version": "1.1.0",
        "environment": "rehearsal",
        "profile": "rehearsal",
        "requested_by": "release-tester",
        "attestations": attestations(),
    }
    conf.update(overrides)
    return conf


def project_dags() -> dict[str, Any]:
    """Every DAG of the project's dags folder, by id (an import error fails the caller)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


def release_dag():
    return project_dags()["sap_llm_release"]


def approving(**overrides: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """Every approval of the spec answered Approve by the release manager, unless ``overrides`` says otherwise."""
    spec = yaml.safe_load(spec_file().read_text())
    return {approval["name"]: ("approve", RELEASE_MANAGER) for approval in spec["approvals"]} | overrides


def run_release(conf: dict[str, Any], approver: Approver | None = None) -> tuple[Any, dict[str, str]]:
    """Run one release, its approvals answered from Slack by ``approver`` (by default, all approved); return the
    DagRun and ``task_id -> state``."""
    complete_dag_test_harness()
    approver = approver or Approver(ledger(), SlackClicker(), approving())
    approver.ledger.migrate()
    approver.start()
    try:
        dag_run = release_dag().test(run_conf=conf)
    finally:
        approver.stop()
    states = {ti.task_id: getattr(ti.state, "value", ti.state) for ti in dag_run.get_task_instances()}
    return dag_run, states


def _share_the_execution_apis_dag_bag(supervisor: Any) -> None:
    """The harness gives its in-process Execution API a new ``DBDagBag`` for every task, so every task start
    deserializes the release DAG (145 tasks) from the database again: about a third of a second of CPU a task, 50 s
    a release. Airflow's API server keeps one bag, which caches each DAG version; so does this harness now."""
    from airflow.api_fastapi.common.dagbag import dag_bag_from_app
    from airflow.models.dagbag import DBDagBag
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    build_client = supervisor._api_client
    shared = DBDagBag()

    def _api_client(dag=None):
        client = build_client(None)
        if dag is not None:
            in_process_api_server().app.dependency_overrides[dag_bag_from_app] = lambda: shared
        return client

    supervisor._api_client = staticmethod(_api_client)


def ledger() -> Ledger:
    import json
    import os

    return Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])


def ledger_at_connection() -> Ledger:
    """The ledger the release's tasks use: the ``sap_llm_ledger`` connection, on whatever database it names."""
    from operators.runtime import LEDGER_CONN_ID, connection_url

    return Ledger(connection_url(LEDGER_CONN_ID))


def release_id(dag_run: Any) -> str:
    return f"{dag_run.dag_id}:{dag_run.run_id}"


def complete_dag_test_harness() -> None:
    """Two gaps of Airflow 3.3.2's ``dag.test()`` harness, filled the way the real components behave, and one cost
    of it cut (:func:`_share_the_execution_apis_dag_bag`); the DAG and its operators and triggers are unchanged:

    - its in-process trigger runner does not answer the HITL requests a trigger sends (Airflow's own HITL operators
      no longer defer); Airflow's triggerer answers them with these two client calls, so this runner does too;
    - it builds its scheduler DAG straight from the serializer, whose deadline alerts are still encoded dicts where
      the scheduler's DAG (read from the database) holds their ids, so a successful run crashed looking them up.
      ``dag.test()`` evaluates no deadlines (it has no scheduler), so its scheduler DAG goes without them.

    The cost it cuts besides: :func:`_propagate_in_one_pass`.
    """
    from airflow.jobs.triggerer_job_runner import HITLDetailResponseResult
    from airflow.sdk.execution_time.comms import GetHITLDetailResponse, UpdateHITLDetail
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor
    from airflow.serialization.serialized_objects import DagSerialization

    if getattr(InProcessTestSupervisor, "_serves_hitl", False):
        return
    handle = InProcessTestSupervisor._handle_request

    def _handle_request(self, msg, log, req_id):
        if isinstance(msg, UpdateHITLDetail):
            response = self.client.hitl.update_response(ti_id=msg.ti_id, chosen_options=msg.chosen_options,
                                                        params_input=msg.params_input)
        elif isinstance(msg, GetHITLDetailResponse):
            response = self.client.hitl.get_detail_response(ti_id=msg.ti_id)
        else:
            return handle(self, msg, log, req_id)
        return self.send_msg(HITLDetailResponseResult.from_api_response(response=response), request_id=req_id)

    InProcessTestSupervisor._handle_request = _handle_request
    InProcessTestSupervisor._serves_hitl = True
    _share_the_execution_apis_dag_bag(InProcessTestSupervisor)

    deserialize = DagSerialization.deserialize_dag.__func__

    def deserialize_dag(cls, *args, **kwargs):
        dag = deserialize(cls, *args, **kwargs)
        if dag.deadline and any(isinstance(alert, dict) for alert in dag.deadline):
            dag.deadline = None
        return dag

    DagSerialization.deserialize_dag = classmethod(deserialize_dag)
    _propagate_in_one_pass()


def _propagate_in_one_pass() -> None:
    """``dag.test()`` sleeps a second each time a pass over the run finds no task to run, and each pass carries a
    failure (upstream_failed, skipped) one level further down: after a failed window the release's rollback waited
    about ten seconds while the failure reached the tasks below it. The scheduler loops without that sleep; so
    does this harness now: a pass that finds no task to run is followed by another while the last one still
    finished some task."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.state import DagRunState, State
    from sqlalchemy import func, or_, select

    one_pass = DagRun.update_state

    def unfinished(dag_run: DagRun, session: Any) -> int:
        return session.scalar(select(func.count()).select_from(TaskInstance).where(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id,
            or_(TaskInstance.state.is_(None), TaskInstance.state.not_in(State.finished))))

    def update_state(self: DagRun, *, session: Any, execute_callbacks: bool = True) -> tuple[list[Any], Any]:
        schedulable, callback = one_pass(self, session=session, execute_callbacks=execute_callbacks)
        while not schedulable and self.state == DagRunState.RUNNING:
            before = unfinished(self, session)
            schedulable, callback = one_pass(self, session=session, execute_callbacks=execute_callbacks)
            if unfinished(self, session) == before:
                break
        return schedulable, callback

    DagRun.update_state = update_state
