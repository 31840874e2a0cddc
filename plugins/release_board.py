"""The release board: what the ledger recorded about recent releases, served by the Airflow API server.

Airflow does not authenticate plugin apps, so every route here asks for an Airflow user (the same JWT the REST
API takes) and shows a release only to users allowed to read the runs of the DAG that made it.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Query

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


class ReleaseBoardPlugin(AirflowPlugin):
    name = "sap_llm_release_board"
    fastapi_apps = [{"app": board, "url_prefix": "/release-board", "name": "SAP_LLM release board"}]
