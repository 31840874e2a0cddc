"""The audit DAGs run (``dag.test()``) against a real Prometheus loaded with recorded history: a healthy day yields
no warning; each injected problem is found with its severity, its day and its measured value; Slack gets one summary
per run and PagerDuty exactly the pages for what is critical, resolved when the next run finds it clear; an
unreachable Prometheus makes the audit critical and the report is still written."""

from __future__ import annotations

import json
import socket
import struct
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse
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
)

DAYS = 8
SERVICE = "sap-llm"
ALERT = AlertFired(day=2, start_hour=10.5, minutes=30, alertname="SapLlmHighErrorRate", severity="critical")
PROBLEMS = (
    ErrorSpike(day=2, hours=(10, 14), error_ratio=0.06),
    ALERT,
    LatencyRegression(day=3, hours=(8, 12), p95_s=2.0),
    ThroughputDip(day=4, hours=(14, 18), docs_per_hour=3000),
    GpuUnderuse(days=(5, 5), utilisation_pct=30),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """``DAYS`` days of the service's series with ``PROBLEMS``, served by a real Prometheus: yields the first day's
    midnight (UTC)."""
    directory = tmp_path_factory.mktemp("audit-history")
    start = history_start(DAYS)
    recorded = write_openmetrics(directory / "history.om", start=start, days=DAYS, step_s=60, problems=PROBLEMS)
    with prometheus_over(backfill(recorded, directory / "tsdb"), free_port()) as url:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        yield start, json.dumps({"conn_type": "http", "host": host, "port": int(port)})


@pytest.fixture
def audits(history, airflow_db, notification_standins, tmp_path, monkeypatch):
    """The audit DAGs on a ledger and a reports folder of this test's own, Prometheus at the recorded history."""
    start, prometheus = history
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS", prometheus)
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
        }


def report_path(run: dict) -> Path:
    uri = urlparse(run["outcome"]["report_uri"])
    assert uri.scheme == "file"
    return Path(url2pathname(uri.path))


def all_ok(severities: dict[str, str]) -> bool:
    return set(severities.values()) == {"ok"}


def test_a_healthy_day_yields_no_warning_one_summary_and_no_page(audits):
    run = audits.run("daily", audits.day(2) - timedelta(seconds=1))
    assert run["state"] == "success"
    assert len(run["severities"]) == 7 and all_ok(run["severities"]), run["severities"]
    assert run["outcome"]["severity"] == "ok" and json.loads(run["outcome"]["counts_json"]) == {
        "ok": 7, "warning": 0, "critical": 0}
    (message,) = run["slack"]
    assert message["channel"] == "#releases" and "daily audit" in message["text"] and ": ok*" in message["text"]
    assert "/release-board/audits/" in message["text"]
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
    assert {name for name, severity in spike_day["severities"].items() if severity != "ok"} == {
        "error_rate", "critical_alerts_fired"}
    assert spike_day["pages"] == [("trigger", f"{SERVICE}-audit/daily/error_rate")]
    assert "error_rate" in spike_day["slack"][0]["text"] and ": critical*" in spike_day["slack"][0]["text"]
    assert report_path(spike_day).is_file()

    next_day = audits.run("daily", audits.day(4) - timedelta(seconds=1))
    assert next_day["severities"]["error_rate"] == "ok"
    assert next_day["severities"]["p95_latency"] == "warning"  # day 3's latency regression
    assert next_day["pages"] == [("resolve", f"{SERVICE}-audit/daily/error_rate")]
    notifications = [(n["channel"], n["kind"], n["status"]) for n in audits.ledger.audit_notifications(
        next_day["run_id"])]
    assert notifications == [("slack", "summary", "sent"), ("pagerduty", "resolve:error_rate", "sent")]


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
    assert week["pages"] == [("trigger", f"{SERVICE}-audit/weekly/error_rate")]


def test_an_unreachable_prometheus_makes_the_audit_critical_and_the_report_is_still_written(audits, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS",
                       json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": free_port()}))
    run = audits.run("daily", audits.day(2) - timedelta(seconds=1))
    assert run["state"] == "failed"
    assert set(run["severities"].values()) == {"critical"} and len(run["severities"]) == 7
    assert all("no data: Prometheus could not be asked" in row["detail"] for row in run["findings"].values())
    report = report_path(run)
    assert report.is_file() and "no data" in report.read_text()
    assert len(run["slack"]) == 1 and len(run["pages"]) == 7


def assert_png(path: Path, width: int, height: int) -> None:
    """``path`` is a PNG of ``width`` x ``height`` whose pixels are not all one colour."""
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (width, height)
    with Image.open(path) as image:
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or ()) > 2

