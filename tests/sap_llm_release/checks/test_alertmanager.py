"""Alert routing read from the running Alertmanager that Prometheus uses, evaluated like its route tree."""

from __future__ import annotations

import time

import pytest

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.checks.alertmanager import AlertmanagerReceivers, AlertmanagerReceiversParams, receivers_for
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.evidence import Threshold, Verdict

NONE_UNROUTED = Threshold(op="==", value=0)
ROUTED = """
route:
  receiver: default
  routes:
    - matchers: ['severity="critical"']
      receiver: pagerduty-critical
    - match: {severity: warning}
      receiver: slack-warning
receivers:
  - name: default
  - name: pagerduty-critical
    pagerduty_configs: [{routing_key: abc}]
  - name: slack-warning
    slack_configs: [{api_url: 'http://slack', channel: '#alerts'}]
"""


def check(url: str, severities=("critical", "warning")):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(url))
    params = AlertmanagerReceiversParams(severities=list(severities), integrations=["pagerduty", "slack"])
    return AlertmanagerReceivers().run(params, NONE_UNROUTED, context)


@pytest.mark.parametrize(("route", "labels", "expected"), [
    ({"receiver": "root"}, {"severity": "critical"}, ["root"]),
    ({"receiver": "root", "routes": [{"matchers": ["severity=~\"crit.*\""], "receiver": "pd"}]},
     {"severity": "critical"}, ["pd"]),
    ({"receiver": "root", "routes": [{"matchers": ["severity!=critical"], "receiver": "other"}]},
     {"severity": "critical"}, ["root"]),
    ({"receiver": "root", "routes": [{"match": {"severity": "critical"}, "receiver": "pd", "continue": True},
                                     {"match_re": {"severity": ".*"}, "receiver": "all"}]},
     {"severity": "critical"}, ["pd", "all"]),
    ({"receiver": "root", "routes": [{"match": {"team": "ml"}, "routes": [{"match": {"severity": "critical"}}]}]},
     {"severity": "critical", "team": "ml"}, ["root"]),  # a child without a receiver inherits its parent's
])
def test_route_tree(route, labels, expected):
    assert receivers_for(route, labels) == expected


def test_each_severity_reaching_an_accepted_integration_passes(canned_prometheus):
    canned_prometheus.set_alertmanager_config(ROUTED)
    evidence = check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert "critical -> pagerduty-critical (pagerduty)" in evidence.detail
    assert "warning -> slack-warning (slack)" in evidence.detail


def test_a_severity_falling_through_to_a_receiver_without_integrations_fails(canned_prometheus):
    canned_prometheus.set_alertmanager_config(ROUTED)
    evidence = check(canned_prometheus.url, severities=("critical", "info"))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert "info -> default (no pagerduty/slack)" in evidence.detail


def test_no_alertmanager_or_an_unreadable_one_fails(canned_prometheus):
    evidence = check(canned_prometheus.url)
    assert (evidence.verdict, evidence.detail) == (Verdict.FAILED, "Prometheus sends alerts to no Alertmanager")
    canned_prometheus.set_alertmanager_config("route: [not, a, mapping")
    evidence = check(canned_prometheus.url)
    assert evidence.verdict is Verdict.FAILED and "status could not be read" in evidence.detail
    canned_prometheus.alertmanagers = (200, {"status": "success", "data": {}})
    assert check(canned_prometheus.url).measured is None


@pytest.mark.stack
def test_the_stacks_alertmanager_pages_critical_and_slacks_warnings(fresh_stack):
    """On a fresh stack: a rehearsal run before on this worker may have killed the stack's Prometheus."""
    deadline = time.monotonic() + 20  # Prometheus discovers its Alertmanager a few seconds after start
    while (evidence := check(fresh_stack.prometheus_url)).measured != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert evidence.verdict is Verdict.PASSED, evidence.detail
    assert "critical -> pagerduty-critical (pagerduty)" in evidence.detail
