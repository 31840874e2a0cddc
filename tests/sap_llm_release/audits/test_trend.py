"""A check's trend against the earlier runs the ledger recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.audits.model import Finding, Severity
from sap_llm_release.audits.trend import Trend
from sap_llm_release.ledger import Ledger, Writer

END = datetime(2026, 11, 29, tzinfo=timezone.utc)


def finding(measured: float | None, severity: Severity = Severity.OK) -> Finding:
    return Finding("error_rate", "slo_series", severity, measured, "warning unless < 0.01", "")


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    for days_before, measured, severity in ((3, 0.002, Severity.OK), (2, None, Severity.CRITICAL),
                                            (1, 0.004, Severity.OK)):
        end = END - timedelta(days=days_before)
        run_id = f"sap_llm_audit_daily:scheduled__{end:%Y-%m-%d}"
        writer = Writer("sap_llm_audit_daily", run_id.split(":", 1)[1], "checks.error_rate", 1)
        ledger.record_audit_run(run_id, audit="daily", service="sap-llm", period_start=end - timedelta(days=1),
                                period_end=end, triggered_by="schedule", spec_digest="d", writer=writer)
        ledger.record_audit_finding(run_id, Finding("error_rate", "slo_series", severity, measured, "< 0.01", ""),
                                    writer)
    return ledger


def test_this_runs_value_is_placed_against_the_earlier_runs(ledger):
    trend = Trend.from_history(ledger.audit_check_history("daily", "error_rate", before=END))
    assert trend.describe(finding(0.05, Severity.CRITICAL)) == (
        "last 3 runs: 0.002 (ok), no data (critical), 0.004 (ok); now above all of them")
    assert trend.describe(finding(0.003)).endswith("now within their range")
    assert trend.describe(finding(0.001)).endswith("now below all of them")
    assert trend.describe(finding(None, Severity.CRITICAL)) == (
        "last 3 runs: 0.002 (ok), no data (critical), 0.004 (ok)")


def test_a_first_run_says_so():
    assert Trend(()).describe(finding(0.002)) == "first run of this check"
