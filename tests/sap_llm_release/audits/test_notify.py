"""An audit told to people through the real clients against local stand-ins: one Slack message per run, a PagerDuty
alert per critical check under its own dedup key, resolved when a later run finds the check clear; every attempt
recorded, failures never raised."""

from __future__ import annotations

from datetime import datetime, timezone

import pagerduty
import pytest
from slack_sdk import WebClient

from sap_llm_release.audits.model import AuditRun, Finding, Severity
from sap_llm_release.audits.notify import AuditNotifier, page_key
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.notify.pagerduty import Pager
from sap_llm_release.notify.slack import SlackChannel
from sap_llm_release.rehearsal.standins import slack_and_pagerduty

RUN = "sap_llm_audit_daily:scheduled__2026-11-29T06:00:00+00:00"
WRITER = Writer("sap_llm_audit_daily", "scheduled__2026-11-29T06:00:00+00:00", "report", 1)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    ledger.record_audit_run(RUN, audit="daily", service="sap-llm", period_start=datetime(2026, 11, 28, 6,
                            tzinfo=timezone.utc), period_end=datetime(2026, 11, 29, 6, tzinfo=timezone.utc),
                            triggered_by="schedule", spec_digest="d", writer=WRITER)
    return ledger


@pytest.fixture
def standins(tmp_path):
    with slack_and_pagerduty(tmp_path / "tls") as both:
        yield both


def notifier(ledger, standins) -> AuditNotifier:
    slack, pager = standins
    client = pagerduty.EventsApiV2Client("R0UT1NGKEY0000000000000000000000", base_url=pager.url,
                                         verify=pager.ca_file)
    return AuditNotifier(ledger, "sap-llm", WRITER, slack=SlackChannel(WebClient(token="x", base_url=slack.url),
                                                                        "#audits"),
                         pager=Pager(client, "sap-llm-release"), backoff_s=0.01)


def run(**severities: Severity) -> AuditRun:
    findings = [Finding(name, "slo_series", severity, 1.0, "< 1", f"{name} detail") for name, severity in
                severities.items()]
    return AuditRun("daily", RUN, datetime(2026, 11, 28, 6), datetime(2026, 11, 29, 6), findings)


def test_critical_findings_page_under_their_own_key_and_clear_ones_resolve(ledger, standins):
    slack, pager = standins
    audit = run(error_rate=Severity.CRITICAL, p95_latency=Severity.WARNING, throughput=Severity.OK)
    notifier(ledger, standins).pages(audit, previously_critical={"throughput", "p95_latency"})
    events = [(e["event_action"], e["dedup_key"]) for e in pager.events()]
    assert events == [("trigger", "sap-llm-audit/daily/error_rate"), ("resolve", "sap-llm-audit/daily/p95_latency"),
                      ("resolve", "sap-llm-audit/daily/throughput")]
    trigger = pager.events()[0]
    assert trigger["payload"]["summary"] == "daily audit: error_rate critical: error_rate detail"
    assert trigger["payload"]["custom_details"] == {"measured": 1.0, "bounds": "< 1"}
    assert page_key("sap-llm", "daily", "error_rate") == "sap-llm-audit/daily/error_rate"
    kinds = [(n["channel"], n["kind"], n["status"]) for n in ledger.audit_notifications(RUN)]
    assert kinds == [("pagerduty", "trigger:error_rate", "sent"), ("pagerduty", "resolve:p95_latency", "sent"),
                     ("pagerduty", "resolve:throughput", "sent")]


def test_one_summary_per_run_and_a_failed_post_is_recorded_not_raised(ledger, standins):
    slack, _ = standins
    slack.fail_next = 10
    notifier(ledger, standins).summary(run(error_rate=Severity.OK), "*daily audit: ok*")
    (recorded,) = ledger.audit_notifications(RUN)
    assert (recorded["channel"], recorded["kind"], recorded["status"]) == ("slack", "summary", "failed")
    assert "*daily audit: ok*" in recorded["detail"]


def test_no_pager_configured_sends_nothing(ledger, standins):
    AuditNotifier(ledger, "sap-llm", WRITER).pages(run(error_rate=Severity.CRITICAL), set())
    assert standins[1].events() == [] and ledger.audit_notifications(RUN) == []
