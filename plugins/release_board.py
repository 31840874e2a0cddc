"""The release board: what the ledger recorded about recent releases and audits, and the audits' reports, served
by the Airflow API server, as JSON and as pages in the Airflow UI (a "Release board" tab on each run of the release
DAG, and an entry in the navigation): the traffic split, each phase's gates, the approvals, each window's SLO series
as a plot, rollbacks and who did what.

Airflow does not authenticate plugin apps, so every route here asks for an Airflow user (the same JWT the REST
API takes, or the UI's session cookie, which the UI's frames carry) and shows a release only to users allowed to
read the runs of the DAG that made it.
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
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from operators.runtime import LEDGER_CONN_ID, connection_url, ledger_for, prometheus_access, release_spec_path, spec_at
from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.board.plots import window_plot, window_series
from sap_llm_release.board.view import render_index, render_release

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


SPEC_PATH = release_spec_path()


@board.get("/", response_class=HTMLResponse)
def index_page(user: GetUserDep) -> str:
    """The board's front page: the releases and audits the user may read."""
    return render_index(recent_releases(user, limit=50), recent_audits(user, audit=None, limit=20))


@board.get("/view", response_class=HTMLResponse, response_model=None)
def release_page(user: GetUserDep, release_id: str | None = None, dag_id: str | None = None,
                 run_id: str | None = None) -> str | RedirectResponse:
    """One release's board (by ``release_id``, or by the ``dag_id`` and ``run_id`` of the run whose tab it is)."""
    if release_id is None and not (dag_id and run_id):
        return RedirectResponse(".")
    return render_release(release_record(release_id or f"{dag_id}:{run_id}", user), spec_at(SPEC_PATH))


@board.get("/plot.png")
def window_plot_png(user: GetUserDep, release_id: str, step: str = Query(pattern=r"^[a-z0-9_]{1,40}$")) -> Response:
    """A window's SLO series, a panel per SLO, asked of the release's Prometheus."""
    record = release_record(release_id, user)
    window = next((w for w in reversed(record["slo_windows"]) if w["step"] == step), None)
    if window is None:
        raise HTTPException(status_code=404, detail=f"release {release_id} has no window {step}")
    series = window_series(spec_at(SPEC_PATH), record["releases"][0], window, PrometheusProvider(prometheus_access()))
    return Response(window_plot(series, window), media_type="image/png")


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
    # pages inside the Airflow UI (frames on the same origin, so the UI's session cookie authenticates them)
    external_views = [
        {"name": "Release board", "href": "release-board/view?dag_id={DAG_ID}&run_id={RUN_ID}",
         "destination": "dag_run", "url_route": "release-board"},
        {"name": "Release board", "href": "release-board/", "destination": "nav", "url_route": "release-board-all",
         "category": "browse"},
    ]
