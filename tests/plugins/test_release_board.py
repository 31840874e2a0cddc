"""The release board plugin through its FastAPI app, with Airflow's own auth manager and JWTs."""

from __future__ import annotations

import importlib.util
import json
import os
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sap_llm_release.ledger import Ledger, Writer

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "release_board.py"


def _load_plugin():
    module_spec = importlib.util.spec_from_file_location("release_board", PLUGIN)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def auth_manager(airflow_db):
    from airflow.api_fastapi.app import init_auth_manager

    return init_auth_manager()


@pytest.fixture
def client(auth_manager):
    return TestClient(_load_plugin().board)


def _token(auth_manager, role: str | None) -> dict[str, str]:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"someone-{role}", role=role))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def release_id():
    ledger = Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])
    ledger.migrate()
    release = f"sap_llm_release:board-{uuid.uuid4().hex[:8]}"
    writer = Writer("sap_llm_release", release.split(":", 1)[1], "start_release", 1)
    ledger.record_release(
        release, service="sap-llm", environment="rehearsal", version="1.4.0", profile="rehearsal",
        triggered_by="alice", spec_digest="abc", blue_slot="blue", writer=writer,
    )
    ledger.record_event(release, "rolled_back", "step_020: SLO error_rate failed", writer)
    return release


def test_anonymous_callers_are_refused(client, release_id):
    assert client.get("/releases").status_code == 401
    assert client.get(f"/releases/{release_id}").status_code == 401
    assert client.get("/releases", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


def test_a_viewer_sees_recent_releases_with_their_outcome(client, auth_manager, release_id):
    response = client.get("/releases", params={"limit": 200}, headers=_token(auth_manager, "viewer"))
    assert response.status_code == 200
    (mine,) = [release for release in response.json() if release["release_id"] == release_id]
    assert (mine["version"], mine["triggered_by"], mine["outcome"]) == ("1.4.0", "alice", "rolled_back")


def test_a_viewer_reads_one_release_record(client, auth_manager, release_id):
    response = client.get(f"/releases/{release_id}", headers=_token(auth_manager, "viewer"))
    assert response.status_code == 200
    assert [event["event"] for event in response.json()["release_events"]] == ["rolled_back"]


def test_a_user_without_a_role_sees_nothing(client, auth_manager, release_id):
    headers = _token(auth_manager, None)
    listed = client.get("/releases", params={"limit": 200}, headers=headers)
    assert listed.status_code == 200 and release_id not in {r["release_id"] for r in listed.json()}
    assert client.get(f"/releases/{release_id}", headers=headers).status_code == 404


def test_the_limit_counts_only_releases_the_user_may_read(auth_manager, monkeypatch):
    """Newer releases of a DAG the user may not read do not crowd out the ones they may."""
    plugin = _load_plugin()
    monkeypatch.setattr(plugin, "may_read_runs", lambda user, dag_id: dag_id == "sap_llm_release")
    ledger = Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])
    ledger.migrate()
    mine = []
    for dag_id in ["sap_llm_release"] * 2 + ["hidden_release_dag"] * 3:
        release = f"{dag_id}:board-{uuid.uuid4().hex[:8]}"
        ledger.record_release(
            release, service="sap-llm", environment="rehearsal", version="1.4.0", profile="rehearsal",
            triggered_by="alice", spec_digest="abc", blue_slot="blue",
            writer=Writer(dag_id, release.split(":", 1)[1], "start_release", 1),
        )
        mine += [release] if dag_id == "sap_llm_release" else []
    response = TestClient(plugin.board).get("/releases", params={"limit": 2}, headers=_token(auth_manager, "viewer"))
    assert response.status_code == 200
    assert [release["release_id"] for release in response.json()] == mine[::-1]


@pytest.fixture
def audit_run_id(tmp_path):
    from datetime import datetime, timezone

    from sap_llm_release.audits.model import Finding, Severity

    ledger = Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])
    ledger.migrate()
    run_id = f"board-{uuid.uuid4().hex[:8]}"
    audit_run_id, writer = f"sap_llm_audit_daily:{run_id}", Writer("sap_llm_audit_daily", run_id, "report", 1)
    ledger.record_audit_run(audit_run_id, audit="daily", service="sap-llm", triggered_by="schedule",
                            period_start=datetime(2030, 1, 1, tzinfo=timezone.utc), spec_digest="abc",
                            period_end=datetime(2030, 1, 2, tzinfo=timezone.utc), writer=writer)
    ledger.record_audit_finding(audit_run_id, Finding("error_rate", "slo_series", Severity.WARNING, 0.02, "< 0.01",
                                                      "worst hour"), writer)
    (tmp_path / "index.html").write_text("<h1>daily audit</h1><img src='error_rate.png'>")
    (tmp_path / "error_rate.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path.parent / "secret.html").write_text("not the report's")
    ledger.record_audit_outcome(audit_run_id, severity="warning", counts={"ok": 0, "warning": 1, "critical": 0},
                                report_uri=(tmp_path / "index.html").as_uri(), writer=writer)
    return audit_run_id


def test_a_viewer_lists_audit_runs_and_reads_their_reports(client, auth_manager, audit_run_id):
    headers = _token(auth_manager, "viewer")
    listed = client.get("/audits", params={"audit": "daily"}, headers=headers).json()
    (mine,) = [run for run in listed if run["audit_run_id"] == audit_run_id]
    assert (mine["severity"], mine["report"]) == ("warning", f"audits/{audit_run_id}/index.html")
    page = client.get(f"/audits/{audit_run_id}/index.html", headers=headers)
    assert page.status_code == 200 and "daily audit" in page.text and page.headers["content-type"].startswith(
        "text/html")
    plot = client.get(f"/audits/{audit_run_id}/error_rate.png", headers=headers)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"


def test_audit_reports_are_refused_to_strangers_and_serve_nothing_outside_the_report(client, auth_manager,
                                                                                      audit_run_id):
    assert client.get(f"/audits/{audit_run_id}/index.html").status_code == 401
    assert client.get(f"/audits/{audit_run_id}/index.html", headers=_token(auth_manager, None)).status_code == 404
    assert client.get("/audits", headers=_token(auth_manager, None)).json() == []
    viewer = _token(auth_manager, "viewer")
    assert client.get(f"/audits/{audit_run_id}/..%2Fsecret.html", headers=viewer).status_code in (404, 422)
    assert client.get(f"/audits/{audit_run_id}/missing.png", headers=viewer).status_code == 404
    assert client.get("/audits", params={"audit": "hourly"}, headers=viewer).status_code == 422


@pytest.fixture
def watched_release(release_id):
    """The release of ``release_id`` with a passed and a failed gate, a shift to 20 %, its failed window and an
    approval still open."""
    from datetime import datetime, timedelta, timezone

    from sap_llm_release.evidence import Evidence, Verdict

    ledger = Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])
    run_id = release_id.split(":", 1)[1]

    def by(task: str) -> Writer:
        return Writer("sap_llm_release", run_id, task, 1)

    ledger.record_gate(release_id, gate="smoke_health", phase="smoke_green", kind="http_probe",
                       evidence=Evidence(Verdict.PASSED, 200, "== 200", "GET /health answered 200"),
                       writer=by("smoke_green.smoke_health"))
    ledger.record_gate(release_id, gate="post_error_rate", phase="post_deployment", kind="prometheus_query",
                       evidence=Evidence(Verdict.FAILED, 0.2, "< 0.01", "PromQL error_ratio"),
                       writer=by("post_deployment.post_error_rate"))
    ledger.record_traffic_change(release_id, reason="shift", before=(100, 0), after=(80, 20), router="nginx",
                                 writer=by("traffic_shift.shift_to_020"))
    started = datetime.now(timezone.utc) - timedelta(seconds=8)
    ledger.record_slo_window(release_id, step="step_020", green_weight=20, verdict="failed", window_seconds=8,
                             reason="SLO error_rate failed 2 of 3 checks (limit 2)", checks=[],
                             started_at=started.isoformat(), writer=by("traffic_shift.shift_to_020"))
    ledger.record_approval_request(release_id, approval="full_traffic_go", point="full_traffic", map_index=-1,
                                   slack_channel="#releases", slack_ts="1700000000.000002",
                                   evidence=["green serves 20 % of traffic"], writer=by("traffic_shift.approve"),
                                   deadline=(started + timedelta(hours=1)).isoformat())
    return release_id


class RangeAnswers:
    """Prometheus' range queries, answered with a rising series ending past the threshold."""

    def __init__(self, access) -> None:
        self.asked: list[str] = []

    def query_range(self, promql, start, end, step):
        self.asked.append(promql)
        points = [(start.timestamp() + i * 2, 0.002 * i) for i in range(1 + int((end - start).total_seconds() / 2))]
        return [({}, points)]


def test_the_board_pages_are_refused_to_anonymous_callers_and_to_users_who_may_not_read_the_run(
        client, auth_manager, watched_release):
    for path in ("/", f"/view?release_id={watched_release}", f"/plot.png?release_id={watched_release}&step=step_020"):
        assert client.get(path).status_code == 401, path
    stranger = _token(auth_manager, None)
    assert watched_release not in client.get("/", headers=stranger).text
    assert client.get("/view", params={"release_id": watched_release}, headers=stranger).status_code == 404
    assert client.get("/plot.png", params={"release_id": watched_release, "step": "step_020"},
                      headers=stranger).status_code == 404


def test_a_viewer_sees_the_split_the_gates_the_open_approval_and_each_windows_plot(client, auth_manager,
                                                                                   watched_release):
    viewer = _token(auth_manager, "viewer")
    index = client.get("/", headers=viewer)
    assert index.status_code == 200 and f'view?release_id={watched_release.replace(":", "%3A")}' in index.text
    run_id = watched_release.split(":", 1)[1]
    page = client.get("/view", params={"dag_id": "sap_llm_release", "run_id": run_id}, headers=viewer)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'data-blue="80" data-green="20"' in html and "rolled_back" in html
    assert "smoke_health" in html and "post_error_rate" in html and "GET /health answered 200" in html
    assert "full_traffic_go" in html and "open until" in html
    assert f'src="plot.png?release_id={watched_release.replace(":", "%3A").replace("+", "%2B")}&amp;step=step_020"' \
        in html


def test_a_windows_plot_is_a_png_of_its_slos_asked_for_greens_slot(client, auth_manager, watched_release,
                                                                   monkeypatch, tmp_path):
    plugin = _load_plugin()
    answers: list[RangeAnswers] = []
    monkeypatch.setattr(plugin, "PrometheusProvider", lambda access: answers.append(RangeAnswers(access)) or
                        answers[-1])
    monkeypatch.setattr(plugin, "prometheus_access", lambda: "http://prometheus.invalid")
    plot = TestClient(plugin.board).get("/plot.png", params={"release_id": watched_release, "step": "step_020"},
                                        headers=_token(auth_manager, "viewer"))
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "window.png").write_bytes(plot.content)
    asked = answers[0].asked
    assert len(asked) == 4 and 'colour="green"' in asked[0] and 'colour="green"' in asked[1], asked  # error, P95
    assert not any('colour="blue"' in promql for promql in asked), asked
    missing = TestClient(plugin.board).get("/plot.png", params={"release_id": watched_release, "step": "bake"},
                                           headers=_token(auth_manager, "viewer"))
    assert missing.status_code == 404
