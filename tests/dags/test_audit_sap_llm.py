"""The audit DAGs run (``dag.test()``) against a real Prometheus loaded with recorded history: a healthy day yields
no warning; each injected problem is found with its severity, its day and its measured value; Slack gets one summary
per run and PagerDuty exactly the pages for what is critical, resolved when the next run finds it clear; an
unreachable Prometheus makes the audit critical and the report is still written."""

from __future__ import annotations

import json
import re
import struct
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

import pytest

from sap_llm_release.ledger import Ledger
from sap_llm_release.rehearsal.history import (
    AlertFired,
    ErrorSpike,
    GpuUnderuse,
    LatencyRegression,
    ThroughputDip,
    backfill,
    history_start,
    prometheus_over,
    write_openmetrics,
    write_service_log,
)
from sap_llm_release.rehearsal.local_stack import JOB_COMMANDS, JOB_ENV, PROJECT_DIR
from sap_llm_release.rehearsal.processes import free_port
from sap_llm_release.rehearsal.standins import alertmanager_to, slack_and_pagerduty
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE

DAYS = 8
SERVICE = "sap-llm"
DAILY_CHECKS = 10
ALERT = AlertFired(day=2, start_hour=10.5, minutes=30, alertname="SapLlmHighErrorRate", severity="critical")
PROBLEMS = (
    ErrorSpike(day=2, hours=(10, 14), error_ratio=0.06),
    ALERT,
    LatencyRegression(day=3, hours=(8, 12), p95_s=2.0),
    ThroughputDip(day=4, hours=(14, 18), docs_per_hour=3000),
    GpuUnderuse(days=(5, 5), utilisation_pct=30),
)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    """The stack's Alertmanager (its own routes), its receivers posting to stand-ins of their own: yields
    ``host:port`` and the stand-ins (Slack, PagerDuty)."""
    directory = tmp_path_factory.mktemp("alertmanager")
    with slack_and_pagerduty(directory / "pagerduty-tls") as receivers, \
            alertmanager_to(*receivers, directory, free_port()) as address:
        yield address, receivers


@pytest.fixture(scope="module")
def history(tmp_path_factory, alertmanager):
    """``DAYS`` days of the service's series with ``PROBLEMS``, served by a real Prometheus that sends alerts to the
    stack's Alertmanager, and the same days of the service's log in a local stack's folder: yields the first day's
    midnight (UTC), the Prometheus connection and the stack folder."""
    directory = tmp_path_factory.mktemp("audit-history")
    start = history_start(DAYS)
    recorded = write_openmetrics(directory / "history.om", start=start, days=DAYS, step_s=60, problems=PROBLEMS)
    stack_dir = directory / "stack"
    stack_dir.mkdir()
    (stack_dir / "stack.json").write_text(json.dumps({  # the local target's layout; no process of it is asked
        "ports": {"router": free_port(), "blue": free_port(), "green": free_port()}, "server_command": [],
        "project_dir": str(PROJECT_DIR), "job_commands": JOB_COMMANDS, "job_env": JOB_ENV}))  # the audits' jobs
    write_service_log(stack_dir / "blue.log", start=start, days=DAYS, problems=PROBLEMS)
    with prometheus_over(backfill(recorded, directory / "tsdb"), free_port(), alertmanager=alertmanager[0]) as url:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        yield start, json.dumps({"conn_type": "http", "host": host, "port": int(port)}), stack_dir


@pytest.fixture
def audits(history, airflow_db, notification_standins, tmp_path, monkeypatch):
    """The audit DAGs on a ledger and a reports folder of this test's own, Prometheus at the recorded history."""
    start, prometheus, stack_dir = history
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS", prometheus)
    monkeypatch.setenv("SAP_LLM_STACK_DIR", str(stack_dir))
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_LEDGER", json.dumps({"conn_type": "sqlite",
                                                                 "host": str(tmp_path / "ledger.db")}))
    monkeypatch.setenv("SAP_LLM_AUDIT_REPORTS", str(tmp_path / "reports"))
    slack, pagerduty = notification_standins
    return AuditHarness(start, Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"), slack, pagerduty)


class AuditHarness:
    def __init__(self, start: datetime, ledger: Ledger, slack, pagerduty) -> None:
        self.start, self.ledger, self.slack, self.pagerduty = start, ledger, slack, pagerduty

    def day(self, index: int) -> datetime:
        return self.start + timedelta(days=index)

    def run(self, audit: str, period_end: datetime) -> dict:
        """One run of ``audit`` judging the period that ends at ``period_end``: what it recorded and sent."""
        from tests.support.runs import complete_dag_test_harness, project_dags

        complete_dag_test_harness()
        slack_seen, pages_seen = len(self.slack.calls("chat.postMessage")), len(self.pagerduty.events())
        dag_run = project_dags()[f"sap_llm_audit_{audit}"].test(
            run_conf={"profile": "rehearsal", "period_end": period_end.isoformat()})
        run_id = f"{dag_run.dag_id}:{dag_run.run_id}"
        findings = {row["check_name"]: row for row in self.ledger.audit_findings(run_id)}
        return {
            "state": str(getattr(dag_run.state, "value", dag_run.state)),
            "run_id": run_id,
            "findings": findings,
            "severities": {name: row["severity"] for name, row in findings.items()},
            "outcome": self.ledger.audit_outcome(run_id),
            "slack": self.slack.calls("chat.postMessage")[slack_seen:],
            "pages": [(event["event_action"], event["dedup_key"]) for event in self.pagerduty.events()[pages_seen:]],
            "report_link": report_link(dag_run),
        }


def report_link(dag_run) -> str | None:
    """What the report task's "Audit report" link opens (the link Airflow stored for the UI; a JSON column)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stored = session.scalar(select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == "report",
            XComModel.key == "_link_AuditReportLink"))
    return stored


def report_path(run: dict) -> Path:
    uri = urlparse(run["outcome"]["report_uri"])
    assert uri.scheme == "file"
    return Path(url2pathname(uri.path))


def all_ok(severities: dict[str, str]) -> bool:
    return set(severities.values()) == {"ok"}


def test_a_healthy_day_yields_no_warning_one_summary_and_no_page(audits, alertmanager):
    receivers_slack, receivers_pagerduty = alertmanager[1]
    run = audits.run("daily", audits.day(2) - timedelta(seconds=1))
    assert run["state"] == "success"
    assert len(run["severities"]) == DAILY_CHECKS and all_ok(run["severities"]), run["severities"]
    assert run["outcome"]["severity"] == "ok" and json.loads(run["outcome"]["counts_json"]) == {
        "ok": DAILY_CHECKS, "warning": 0, "critical": 0}
    assert run["findings"]["alert_delivery"]["measured_value"] == 2  # the synthetic alert reached both receivers
    synthetic = [(e["event_action"], e["payload"]["summary"]) for e in receivers_pagerduty.events()]
    assert [action for action, _ in synthetic][-2:] == ["trigger", "resolve"]
    assert "SapLlmAuditSyntheticAlert" in synthetic[-1][1] and receivers_slack.calls("chat.postMessage")
    assert run["findings"]["error_log_volume"]["measured_value"] <= 60
    assert run["findings"]["cost_per_document"]["measured_value"] < 0.005
    (message,) = run["slack"]
    assert message["channel"] == "#releases" and "daily audit" in message["text"] and ": ok*" in message["text"]
    assert "/release-board/audits/" in message["text"]
    board = "http://localhost:8080/release-board/audits"
    assert run["report_link"] == f"{board}/{quote(run['run_id'], safe='')}/index.html"
    assert run["pages"] == []
    report = report_path(run)
    assert report.is_file() and "error_rate" in report.read_text()
    assert_png(report.parent / "error_rate.png", 900, 300)


def test_a_critical_finding_pages_once_and_the_next_clear_run_resolves_it(audits):
    spike_day = audits.run("daily", audits.day(3) - timedelta(seconds=1))
    assert spike_day["state"] == "failed"  # a critical audit ends failed, after its report and its page
    error_rate = spike_day["findings"]["error_rate"]
    assert (error_rate["severity"], error_rate["finding_day"]) == ("critical", audits.day(2).date().isoformat())
    assert error_rate["measured_value"] == pytest.approx(0.06, rel=0.02)
    alerts = spike_day["findings"]["critical_alerts_fired"]
    assert (alerts["severity"], alerts["measured_value"]) == ("warning", 1)
    fired = f"SapLlmHighErrorRate (colour=blue, job=sap-llm) fired 30 min from {audits.day(2):%Y-%m-%d} 10:30 UTC"
    assert alerts["detail"] == fired
    error_lines = spike_day["findings"]["error_log_volume"]
    assert (error_lines["severity"], error_lines["finding_day"]) == ("critical", audits.day(2).date().isoformat())
    assert error_lines["measured_value"] == pytest.approx(6000 * 0.06, rel=0.06)  # one line per failed document
    assert {name for name, severity in spike_day["severities"].items() if severity != "ok"} == {
        "error_rate", "critical_alerts_fired", "error_log_volume"}
    assert spike_day["pages"] == [("trigger", f"{SERVICE}-audit/daily/error_rate"),
                                  ("trigger", f"{SERVICE}-audit/daily/error_log_volume")]
    assert "error_rate" in spike_day["slack"][0]["text"] and ": critical*" in spike_day["slack"][0]["text"]
    assert report_path(spike_day).is_file()

    next_day = audits.run("daily", audits.day(4) - timedelta(seconds=1))
    assert next_day["severities"]["error_rate"] == "ok"
    assert next_day["severities"]["p95_latency"] == "warning"  # day 3's latency regression
    assert re.search(r"last 1 runs: 0\.06\d* \(critical\); now below all of them", report_path(next_day).read_text())
    assert next_day["pages"] == [("resolve", f"{SERVICE}-audit/daily/error_rate"),
                                 ("resolve", f"{SERVICE}-audit/daily/error_log_volume")]
    notifications = [(n["channel"], n["kind"], n["status"]) for n in audits.ledger.audit_notifications(
        next_day["run_id"])]
    assert notifications == [("slack", "summary", "sent"), ("pagerduty", "resolve:error_rate", "sent"),
                             ("pagerduty", "resolve:error_log_volume", "sent")]


def test_the_weekly_audit_finds_each_injected_problem_on_its_day(audits):
    week = audits.run("weekly", audits.day(DAYS) - timedelta(seconds=1))
    found = {name: (row["severity"], row["finding_day"], row["measured_value"])
             for name, row in week["findings"].items()}
    day = {index: audits.day(index).date().isoformat() for index in range(DAYS)}
    assert found["error_rate"][:2] == ("critical", day[2])
    assert found["p95_latency"][:2] == ("warning", day[3]) and found["p95_latency"][2] == pytest.approx(2.0, rel=0.1)
    assert found["throughput"][:2] == ("warning", day[4]) and found["throughput"][2] == pytest.approx(3000, rel=0.05)
    assert found["gpu_utilisation_floor"][:2] == ("warning", day[5])
    assert found["gpu_utilisation_floor"][2] == pytest.approx(0.30, abs=0.01)
    assert found["critical_alerts_fired"][:2] == ("warning", day[2])
    assert found["availability"][0] == "ok" and found["gpu_utilisation_ceiling"][0] == "ok"
    assert found["cost_per_document"][0] == "ok"
    assert found["incident_retrospective"][:1] == ("warning",) and found["incident_retrospective"][2] == 1
    assert "SapLlmHighErrorRate" in week["findings"]["incident_retrospective"]["detail"]
    # the accuracy review's job ran the validator on the rehearsal's review sample, recorded under the audit run
    assert found["model_accuracy"] == ("ok", None, 0), week["findings"]["model_accuracy"]["detail"]
    review = audits.ledger.audit_job_result(week["run_id"], "accuracy_review")
    assert (review["kind"], review["documents"]) == ("evaluate", 150)
    assert "9 of 9 metrics meet their release gate on 150 documents" in week["findings"]["model_accuracy"]["detail"]
    assert not any("not judged" in row["detail"] for row in week["findings"].values())
    assert len(found) == len(load_spec(SPEC_FILE).audits.weekly.checks)
    assert week["pages"] == [("trigger", f"{SERVICE}-audit/weekly/error_rate")]


def test_an_unreachable_prometheus_makes_the_audit_critical_and_the_report_is_still_written(audits, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS",
                       json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": free_port()}))
    run = audits.run("daily", audits.day(2) - timedelta(seconds=1))
    assert run["state"] == "failed"
    from_logs = {"error_log_volume"}  # judged from the service's logs, which are still there
    assert {name for name, severity in run["severities"].items() if severity == "critical"} == set(
        run["severities"]) - from_logs and len(run["severities"]) == DAILY_CHECKS
    assert all("no data" in run["findings"][name]["detail"] for name in set(run["severities"]) - from_logs)
    assert run["severities"]["error_log_volume"] == "ok"
    report = report_path(run)
    assert report.is_file() and "no data" in report.read_text()
    assert len(run["slack"]) == 1 and len(run["pages"]) == DAILY_CHECKS - 1


def assert_png(path: Path, width: int, height: int) -> None:
    """``path`` is a PNG of ``width`` x ``height`` whose pixels are not all one colour."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (width, height)
    with Image.open(path) as image:
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 2

