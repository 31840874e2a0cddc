"""The release board: what the ledger recorded about recent releases and audits, and the audits' reports, served
by the Airflow API server.

Airflow does not authenticate plugin apps, so every route here asks for an Airflow user (the same JWT the REST
API takes) and shows a release only to users allowed to read the runs of the DAG that made it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as FastApiPath
from fastapi.responses import FileResponse

from operators.runtime import LEDGER_CONN_ID, connection_url, ledger_for

board = FastAPI(title="SAP_LLM release board", description=__doc__)


def may_read_runs(user: Any, dag_id: str) -> bool:
    """The auth manager's answer: may ``user`` read the runs of ``dag_id``."""
    return get_auth_manager().is_authorized_dag(
        method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
    )


@board.get("/releases")
def recent_releases(user: GetUserDep, limit: int = Query(20, ge=1, le=200)) -> list[dict[str, Any]]:
    """The newest ``limit`` releases the user may read, with their latest recorded event (the permission filter
    comes before the limit, so releases of other DAGs never crowd out readable ones)."""
    ledger = ledger_for(connection_url(LEDGER_CONN_ID))
    readable = {dag_id for dag_id in ledger.release_dag_ids() if may_read_runs(user, dag_id)}
    return ledger.recent_releases(limit, dag_ids=readable)


@board.get("/releases/{release_id:path}")
def release_record(release_id: str, user: GetUserDep) -> dict[str, list[dict[str, Any]]]:
    """Everything the ledger holds about one release: gates, SLO windows, traffic changes, rollbacks, events."""
    record = ledger_for(connection_url(LEDGER_CONN_ID)).release_record(release_id)
    if not record["releases"] or not may_read_runs(user, record["releases"][0]["dag_id"]):
        raise HTTPException(status_code=404, detail=f"no release {release_id} you may read")
    return record


AUDITS = ("daily", "weekly", "monthly")


@board.get("/audits")
def recent_audits(user: GetUserDep, audit: str | None = Query(None, pattern="^(daily|weekly|monthly)$"),
                  limit: int = Query(50, ge=1, le=500)) -> list[dict[str, Any]]:
    """The newest audit runs (of ``audit`` when given) the user may read, with their severity and report link."""
    ledger = ledger_for(connection_url(LEDGER_CONN_ID))
    readable = [name for name in ([audit] if audit else AUDITS) if may_read_runs(user, f"sap_llm_audit_{name}")]
    runs = sorted((run for name in readable for run in ledger.audit_runs(name, limit=limit)),
                  key=lambda run: str(run["period_end"]), reverse=True)[:limit]
    for run in runs:
        run["report"] = f"audits/{run['audit_run_id']}/index.html" if run.get("report_uri") else None
    return runs


REPORT_FILE = r"^[A-Za-z0-9_.-]+\.(html|png)$"


@board.get("/audits/{audit_run_id}/{file_name}")
def audit_report_file(audit_run_id: str, user: GetUserDep,
                      file_name: str = FastApiPath(pattern=REPORT_FILE)) -> FileResponse:
    """A file of an audit run's report (its page, its plots), from the folder the ledger recorded for it."""
    ledger = ledger_for(connection_url(LEDGER_CONN_ID))
    run, outcome = ledger.audit_run(audit_run_id), ledger.audit_outcome(audit_run_id)
    if run is None or not may_read_runs(user, run["dag_id"]) or not outcome or not outcome["report_uri"]:
        raise HTTPException(status_code=404, detail=f"no audit report {audit_run_id} you may read")
    folder = Path(url2pathname(urlparse(outcome["report_uri"]).path)).parent
    path = folder / file_name
    if path.parent != folder or not path.is_file():
        raise HTTPException(status_code=404, detail=f"the report of {audit_run_id} has no {file_name}")
    return FileResponse(path)


class ReleaseBoardPlugin(AirflowPlugin):
    name = "sap_llm_release_board"
    fastapi_apps = [{"app": board, "url_prefix": "/release-board", "name": "SAP_LLM release board"}]
