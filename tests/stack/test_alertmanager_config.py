"""The stack's Alertmanager configuration (stack/alertmanager.yml.tmpl): amtool accepts it, `amtool config routes
test` sends critical alerts to PagerDuty and warnings to Slack, and a running Alertmanager inhibits the alerts an API
endpoint down causes while it fires, and those of a green whose release is rolling back with the service's burn-rate
alerts (the release paged for it)."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timedelta, timezone
from string import Template

import httpx
import pytest

from sap_llm_release.notify.alertmanager import post_alerts, rollback_alert
from sap_llm_release.rehearsal import local_stack
from sap_llm_release.rehearsal.processes import free_port, stop_group

CAUSED = ("SapLlmHighLatency", "SapLlmLowThroughput", "SapLlmAvailabilityErrorBudgetBurnPage")


@pytest.fixture
def config(tmp_path):
    rendered = Template((local_stack.STACK_FILES / "alertmanager.yml.tmpl").read_text()).substitute(
        pagerduty_url="https://events.pagerduty.com/v2/enqueue", slack_url="https://hooks.slack.com/services/x")
    (tmp_path / "alertmanager.yml").write_text(rendered)
    return tmp_path / "alertmanager.yml"


def test_amtool_accepts_the_configuration(config):
    checked = subprocess.run(["amtool", "check-config", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 3 inhibit rules" in checked.stdout and " - 2 receivers" in checked.stdout


@pytest.mark.parametrize(("labels", "receivers"), [
    (["alertname=SapLlmApiEndpointDown", "severity=critical"], "pagerduty-critical"),
    (["alertname=SapLlmAvailabilityErrorBudgetBurnPage", "severity=critical"], "pagerduty-critical"),
    (["alertname=SapLlmHighLatency", "severity=warning", "colour=green"], "slack-warning"),
    (["alertname=SapLlmLatencyErrorBudgetBurnTicket", "severity=warning"], "slack-warning"),
    (["alertname=SapLlmAlertDeliveryTest", "severity=critical", "synthetic=true"], "pagerduty-critical,slack-warning"),
])
def test_amtool_routes_each_severity_to_its_receiver(config, labels, receivers):
    routed = subprocess.run(["amtool", "config", "routes", "test", f"--config.file={config}", *labels],
                            capture_output=True, text=True)
    assert routed.returncode == 0, routed.stdout + routed.stderr
    assert routed.stdout.strip() == receivers


@pytest.fixture
def alertmanager(tmp_path):
    """A running Alertmanager with the stack's configuration (its receivers' URLs answer nothing): its base URL."""
    port = free_port()
    local_stack.start_alertmanager(tmp_path, port, pagerduty_url="http://127.0.0.1:9/v2/enqueue",
                                   slack_url="http://127.0.0.1:9/slack")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(int((tmp_path / "alertmanager.pid").read_text()))


def alerts_for(now: datetime) -> dict:
    return {"startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=5)).isoformat()}


def test_an_endpoint_down_inhibits_the_alerts_it_causes(alertmanager):
    url = f"{alertmanager}/api/v2/alerts"
    alert = alerts_for(datetime.now(timezone.utc))
    caused = [{**alert, "labels": {"alertname": name, "severity": "warning"}} for name in CAUSED]
    other = {**alert, "labels": {"alertname": "SapLlmHighMemory", "severity": "warning"}}
    httpx.post(url, json=[*caused, other], timeout=5).raise_for_status()
    assert inhibited(url) == set()
    down = {**alert, "labels": {"alertname": "SapLlmApiEndpointDown", "severity": "critical"}}
    httpx.post(url, json=[down], timeout=5).raise_for_status()
    deadline = time.monotonic() + 10
    while inhibited(url) != set(CAUSED) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert inhibited(url) == set(CAUSED)  # the high memory it does not cause still notifies


def inhibited(url: str) -> set[str]:
    return {alert["labels"]["alertname"] for alert in httpx.get(url, timeout=5).json()
            if alert["status"]["inhibitedBy"]}


def test_a_release_rolling_back_inhibits_its_greens_alerts_and_the_burn_rate_pages_only(alertmanager):
    now = datetime.now(timezone.utc)
    raised = [{**alerts_for(now), "labels": {"alertname": name, "severity": "critical", "colour": colour}}
              for name in ("SapLlmHighErrorRate", "SapLlmHighLatency") for colour in ("green", "blue")]
    raised += [{**alerts_for(now), "labels": {"alertname": name, "severity": "critical", "sloth_service": "sap-llm"}}
               for name in ("SapLlmAvailabilityErrorBudgetBurnPage", "SapLlmHighMemory")]
    httpx.post(f"{alertmanager}/api/v2/alerts", json=raised, timeout=5).raise_for_status()
    announced = rollback_alert("sap-llm", "rel-1", "green", now, timedelta(minutes=10))
    assert post_alerts([alertmanager, "http://127.0.0.1:9"], [announced])[alertmanager] == "sent"
    deadline = time.monotonic() + 10
    while inhibited_by_colour(alertmanager) != INHIBITED and time.monotonic() < deadline:
        time.sleep(0.2)
    # green's alerts and the service's burn rate are the page's; blue's alerts, and high memory, still notify
    assert inhibited_by_colour(alertmanager) == INHIBITED


INHIBITED = {("SapLlmHighErrorRate", "green"), ("SapLlmHighLatency", "green"),
             ("SapLlmAvailabilityErrorBudgetBurnPage", None)}


def inhibited_by_colour(base: str) -> set[tuple[str, str]]:
    return {(alert["labels"]["alertname"], alert["labels"].get("colour"))
            for alert in httpx.get(f"{base}/api/v2/alerts", timeout=5).json() if alert["status"]["inhibitedBy"]}
