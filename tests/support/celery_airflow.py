"""The project's Airflow as separate components on the CeleryExecutor, for the tests that run a release through the
real scheduler, triggerer and Celery worker: its metadata in a throwaway PostgreSQL, a throwaway Redis as the broker,
the environment from operators/deployment.py with the test run's connections (the ledger, the worker's live stack,
Slack's signing secret)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from operators import deployment
from sap_llm_release.rehearsal.airflow_processes import AirflowClient, AirflowProcesses, SlackButtons
from sap_llm_release.rehearsal.local_postgres import temporary_postgres
from sap_llm_release.rehearsal.local_redis import temporary_redis
from tests.support.approvals import RELEASE_MANAGER, SIGNING_SECRET, SLACK_TEAM

DAG_ID = "sap_llm_release"
FINISHED = ("success", "failed")


@dataclass
class RunningAirflow:
    """Airflow's processes run for real (the Celery components here, ``airflow standalone`` in the rollback
    benchmark), its REST API as the admin and the release manager's Slack buttons."""

    processes: AirflowProcesses
    api: AirflowClient
    buttons: SlackButtons
    metadata_url: str

    def follow(self, run_id: str, approvals: list[str], on_states: Callable[[dict], None] = lambda states: None,
               timeout_s: float = 480) -> str:
        """Poll the run every second until it ends: hand every poll's task states to ``on_states``, then click
        Approve on each approval once it waits; return the run's final state."""
        deadline, answered = time.monotonic() + timeout_s, set()
        while (state := self.api.run_state(DAG_ID, run_id)) not in FINISHED:
            assert time.monotonic() < deadline, f"run {run_id} still {state} after {timeout_s:.0f}s"
            states = self.api.task_states(DAG_ID, run_id)
            on_states(states)
            self.buttons.approve_waiting(f"{DAG_ID}:{run_id}", states, approvals, answered)
            time.sleep(1)
        return state

    def restart(self, *names: str) -> None:
        """SIGKILL the named components and start them again."""
        for name in names:
            self.processes.kill(name)
        self.processes.start(*names)

    def start_another(self, name: str, like: str) -> None:
        """Start one more component ``name`` running what ``like`` runs (a second scheduler: Airflow's HA)."""
        self.processes.commands[name] = self.processes.commands[like]
        self.processes.start(name)


@contextlib.contextmanager
def celery_airflow(home: Path, api_port: int) -> Iterator[RunningAirflow]:
    """Airflow's components (api-server, scheduler, dag-processor, triggerer, a Celery worker) started from this
    checkout with the test process's environment (its connections and ``SAP_LLM_*`` settings), stopped after."""
    home.mkdir(parents=True, exist_ok=True)
    with temporary_postgres("airflow", driver="psycopg2") as metadata_url, temporary_redis() as broker_url:
        assert metadata_url and broker_url, "make setup installs Debian's postgresql and redis-server"
        env = deployment.local_environment(home, "CeleryExecutor", metadata_url, api_port, broker_url)
        processes = AirflowProcesses(home, env, deployment.components("CeleryExecutor"))
        try:
            processes.migrate()
            processes.start()
            api = AirflowClient(f"http://127.0.0.1:{api_port}", home)
            api.wait_ready((DAG_ID,), 180, processes.exited)
            yield RunningAirflow(processes, api, SlackButtons(api.url, SIGNING_SECRET, RELEASE_MANAGER, SLACK_TEAM),
                                metadata_url)
        finally:
            processes.stop()
