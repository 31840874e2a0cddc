"""alert_delivery against a real Alertmanager (Debian's, started by the local stack's own helper with the stack's
routes) whose PagerDuty and Slack receivers post to the stand-ins, found through a canned Prometheus."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from string import Template

import pytest
import yaml

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.audits.alert_delivery import SYNTHETIC_ALERT
from sap_llm_release.audits.base import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.audits.spec import AuditCheck
from sap_llm_release.checks.alertmanager import receivers_for
from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal import local_stack
from sap_llm_release.rehearsal.standins import alertmanager_to, slack_and_pagerduty
from tests.sap_llm_release.conftest import CannedPrometheus, find_free_port

pytestmark = pytest.mark.skipif(shutil.which("prometheus-alertmanager") is None,
                                reason="Debian's prometheus-alertmanager is not installed (make setup installs it)")


@pytest.fixture
def receivers(tmp_path):
    with slack_and_pagerduty(tmp_path / "pagerduty-tls") as standins:
        yield standins


@pytest.fixture
def alertmanager(tmp_path, receivers):
    """Base URL of an Alertmanager running the stack's routes, its receivers posting to the stand-ins."""
    with alertmanager_to(*receivers, tmp_path, find_free_port()) as address:
        yield f"http://{address}"


@pytest.fixture
def prometheus():
    server = CannedPrometheus()
    yield server
    server.close()


def sends_to(prometheus: CannedPrometheus, *managers: str) -> AuditContext:
    prometheus.alertmanagers = (200, {"status": "success", "data": {"activeAlertmanagers": [
        {"url": f"{manager}/api/v2/alerts"} for manager in managers]}})
    end = datetime.now(timezone.utc)
    return AuditContext(service="sap-llm", period_start=end - timedelta(days=1), period_end=end,
                        step=timedelta(hours=1), metrics=PrometheusProvider(prometheus.url))


def delivery_check(deadline_s: float = 20) -> AuditCheck:
    return AuditCheck(name="alert_delivery", kind="alert_delivery",
                      params={"integrations": ["pagerduty", "slack"], "deadline_s": deadline_s, "interval_s": 0.2})


def test_the_synthetic_alert_reaches_pagerduty_and_slack_and_is_resolved(alertmanager, receivers, prometheus):
    slack, pagerduty = receivers
    finding = judge(delivery_check(), sends_to(prometheus, alertmanager))

    assert finding.severity is Severity.OK, finding.detail
    assert finding.measured == 2
    assert "pagerduty-critical (pagerduty: 1 delivered, 0 failed)" in finding.detail
    assert "slack-warning (slack: 1 delivered, 0 failed)" in finding.detail
    run_id = finding.detail.split("audit_run=")[1].split(":")[0]
    # PagerDuty sends resolutions (send_resolved defaults to true there): one trigger, then one resolve
    events = poll_until(pagerduty.events, lambda seen: len(seen) >= 2, timeout_s=10, interval_s=0.1)
    assert [event["event_action"] for event in events] == ["trigger", "resolve"]
    assert events[0]["dedup_key"] == events[1]["dedup_key"]
    firing = events[0]["payload"]["custom_details"]["firing"]
    assert f"alertname = {SYNTHETIC_ALERT}" in firing and f"audit_run = {run_id}" in firing
    # Slack's receiver does not send resolutions: the one firing message, nothing else
    messages = slack.calls("chat.postMessage")
    assert len(messages) == 1
    assert messages[0]["attachments"][0]["title"].startswith(f"[FIRING:1] {SYNTHETIC_ALERT} ")
    assert run_id in messages[0]["attachments"][0]["title"]


def test_a_receiver_whose_integration_fails_is_critical_and_named(alertmanager, receivers, prometheus):
    slack, pagerduty = receivers
    pagerduty.fail_next = 10**6  # every request answered 500
    finding = judge(delivery_check(deadline_s=3), sends_to(prometheus, alertmanager))

    assert finding.severity is Severity.CRITICAL
    assert finding.measured == 1
    assert "not delivered within 3 s: pagerduty-critical" in finding.detail
    assert "pagerduty: 0 delivered" in finding.detail and "slack: 1 delivered" in finding.detail
    assert pagerduty.requests, "Alertmanager never tried PagerDuty"


def test_an_unreachable_alertmanager_is_critical_no_data(prometheus):
    finding = judge(delivery_check(), sends_to(prometheus, f"http://127.0.0.1:{find_free_port()}"))

    assert finding.severity is Severity.CRITICAL
    assert finding.measured is None
    assert finding.detail.startswith("no data: Alertmanager GET")


def test_prometheus_sending_to_no_alertmanager_is_no_data(prometheus):
    finding = judge(delivery_check(), sends_to(prometheus))

    assert (finding.severity, finding.measured) == (Severity.CRITICAL, None)
    assert "Prometheus sends alerts to no Alertmanager" in finding.detail


def test_the_stack_routes_only_the_synthetic_alert_to_both_receivers(tmp_path):
    rendered = Template((local_stack.STACK_FILES / "alertmanager.yml.tmpl").read_text()).substitute(
        pagerduty_url="https://events.pagerduty.com/v2/enqueue", slack_url="https://hooks.slack.com/services/x")
    (tmp_path / "alertmanager.yml").write_text(rendered)
    if shutil.which("amtool"):
        checked = subprocess.run(["amtool", "check-config", str(tmp_path / "alertmanager.yml")],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    route = yaml.safe_load(rendered)["route"]

    synthetic = {"alertname": SYNTHETIC_ALERT, "severity": "critical", "synthetic": "true", "audit_run": "1"}
    assert receivers_for(route, synthetic) == ["pagerduty-critical", "slack-warning"]
    assert receivers_for(route, {"severity": "critical"}) == ["pagerduty-critical"]
    assert receivers_for(route, {"severity": "warning"}) == ["slack-warning"]
