"""Several Slack users answering one pending approval at the same moment, against real Airflow metadata.

Run as a program (``python -m tests.support.approval_race RESULT_JSON``) with the metadata database in
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` and the ledger in ``AIRFLOW_CONN_SAP_LLM_LEDGER``: Airflow reads its database
URL once, at import, so each metadata backend needs its own process. A one-approval DAG (the release's own
:class:`ReleaseApprovalOperator`) runs under ``dag.test()``; once the approval is pending, every click in
``CLICKS`` is posted at once (one thread each) to the real callback plugin app. What Airflow and the ledger then
hold is written to RESULT_JSON. With ``--late`` nobody clicks while the approval waits: it times out, and then
every click in ``CLICKS`` comes in one after another (the spec in ``SAP_LLM_RELEASE_SPEC``, with a short timeout).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.support.airflow_db import copy_migrated_airflow_db
from tests.support.approvals import SlackClicker, click_body, signed
from tests.support.runs import complete_dag_test_harness, release_conf, spec_file

DAG_ID = "approval_race"
APPROVAL = "first_shift_go"
TASK_ID = f"approve_{APPROVAL}"
# (action, Slack user): both listed approvers of first_shift_go, each clicking both buttons, twice (a second click
# by the same person is a distinct request: Slack sends a new trigger_id each time).
CLICKS = [(action, user, n) for n in range(2) for user in ("U0RELMGR01", "U0MLLEAD01")
          for action in ("approve", "reject")]


def race_dag() -> Any:
    from airflow.sdk import DAG, task

    from operators.approvals import ReleaseApprovalOperator
    from operators.runtime import ReleaseRun

    @task
    def open_release(**context: Any) -> None:
        run = ReleaseRun(str(spec_file()), context)
        run.ledger.record_release(
            run.release_id, service=run.spec.service, environment=run.request.environment,
            version=run.request.version, profile=run.request.profile, triggered_by=run.triggered_by,
            spec_digest="race", blue_slot="blue", writer=run.writer)

    with DAG(DAG_ID, schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
             params=release_conf()) as dag:
        open_release() >> ReleaseApprovalOperator(task_id=TASK_ID, spec_path=str(spec_file()), approval=APPROVAL,
                                                  guard_weight=0)
    return dag


def click_in_turn(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every click in ``CLICKS``, one after another."""
    clicker, replies = SlackClicker(), []
    for index, (action, user, n) in enumerate(CLICKS):
        body = click_body(request["release_id"], APPROVAL, action, user, trigger_id=f"late.{index}.{n}")
        reply = clicker.post(body, signed(body))
        replies.append({"action": action, "user": user, "http": reply.status_code, **reply.json()})
    return replies


def click_at_once(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every click in ``CLICKS``, released together by a barrier; each reply with who clicked what."""
    clicker = SlackClicker()
    barrier = threading.Barrier(len(CLICKS))
    replies: list[dict[str, Any]] = [{} for _ in CLICKS]

    def click(index: int) -> None:
        action, user, n = CLICKS[index]
        body = click_body(request["release_id"], APPROVAL, action, user, trigger_id=f"race.{index}.{n}")
        headers = signed(body)
        barrier.wait()
        reply = clicker.post(body, headers)
        replies[index] = {"action": action, "user": user, "http": reply.status_code, **reply.json()}

    threads = [threading.Thread(target=click, args=(index,)) for index in range(len(CLICKS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return replies


class Racer(threading.Thread):
    """Waits for the approval to be pending in Airflow, then clicks; what it raises is kept for the report."""

    def __init__(self, late: bool) -> None:
        super().__init__(daemon=True)
        self.late = late
        self.replies: list[dict[str, Any]] = []
        self.request: dict[str, Any] | None = None
        self.error: str | None = None

    def run(self) -> None:
        from tests.support.approvals import load_plugin
        from tests.support.runs import ledger_at_connection

        ledger, hitl = ledger_at_connection(), load_plugin().AirflowHITL()
        try:
            deadline = time.monotonic() + 120
            while self.request is None and time.monotonic() < deadline:
                rows = [row for row in ledger.approval_requests_opened_since("1970-01-01T00:00:00+00:00")
                        if row["approval"] == APPROVAL]
                if rows and hitl.answer(rows[0]) is None:
                    self.request = rows[0]
                time.sleep(0.25)
            if self.request is None:
                raise TimeoutError("the approval was never pending")
            time.sleep(1.0)  # the task parks in the triggerer first
            if not self.late:
                self.replies = click_at_once(self.request)
        except Exception as exc:  # noqa: BLE001 - reported in the result
            self.error = f"{type(exc).__name__}: {exc}"


def airflow_holds(request: dict[str, Any]) -> dict[str, Any]:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalar(select(TaskInstance).where(
            TaskInstance.dag_id == request["dag_id"], TaskInstance.run_id == request["run_id"],
            TaskInstance.task_id == request["task_id"]))
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        return {"state": str(getattr(ti.state, "value", ti.state)), "chosen_options": detail.chosen_options,
                "responded_by": detail.responded_by}


def _ledger_rows(ledger: Any, release_id: str) -> dict[str, list[dict[str, Any]]]:
    record = ledger.release_record(release_id)
    return {"approvals": record["approvals"], "approval_claims": record["approval_claims"],
            "slack_interactions": ledger.slack_interactions(release_id)}


def dag_from_folder() -> Any:
    """The race DAG as the DAG processor sees it (``dag.test()`` re-syncs the DAGs folder before it runs)."""
    import os

    from airflow.dag_processing.dagbag import DagBag

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "approval_race_dag.py").write_text(
        "# an airflow DAG (the DAG processor reads files that say so)\n"
        "from tests.support.approval_race import race_dag\n\ndag = race_dag()\n")
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[DAG_ID]


def main(result_path: str, late: bool = False) -> None:
    from tests.support.runs import ledger_at_connection

    metadata_url = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if metadata_url.startswith("sqlite:///"):
        copy_migrated_airflow_db(Path(metadata_url.removeprefix("sqlite:///")))
    else:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    ledger = ledger_at_connection()
    ledger.migrate()
    complete_dag_test_harness()
    racer = Racer(late)
    racer.start()
    dag_from_folder().test(run_conf=release_conf())
    racer.join(timeout=150)
    request = racer.request or {}
    if late and request:
        racer.replies = click_in_turn(request)
    result: dict[str, Any] = {"error": racer.error, "replies": racer.replies, "request": request}
    if request:
        result["airflow"] = airflow_holds(request)
        result["ledger"] = _ledger_rows(ledger, request["release_id"])
    Path(result_path).write_text(json.dumps(result, default=str, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], late="--late" in sys.argv[2:])
