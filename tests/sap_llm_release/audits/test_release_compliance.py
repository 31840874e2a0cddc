"""release_compliance over ledgers written with the ledger's own record_* methods: a complete release is ok, and
each kind of gap (a gate without a verdict, an approval by the person who triggered the release, an unverified
rollback, a release without an outcome) is named with its release."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.audits.base import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.evidence import Evidence, Verdict
from sap_llm_release.ledger import Ledger, Writer

GATES = ("model_accuracy", "tls_version", "dr_rto")
APPROVALS = ("first_shift_go", "full_traffic_go")
PEOPLE = {"alice": "U0ALICE"}
WRITER = Writer(dag_id="sap_llm_release", run_id="manual__1", task_id="record", try_number=1)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    yield ledger
    ledger.engine.dispose()


@pytest.fixture
def check(spec):
    return spec.audits.monthly.check("release_compliance")


def context_for(ledger: Ledger | None, service: str = "sap-llm") -> AuditContext:
    """The month before now (a minute ahead, past the ledger's records)."""
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return AuditContext(service=service, period_start=end - timedelta(days=30), period_end=end,
                        step=timedelta(hours=1), ledger=ledger, gates=GATES, approvals=APPROVALS, people=PEOPLE)


def promoted_release(ledger: Ledger, release_id: str, *, gates=GATES, approvers=("bob", "carol")) -> None:
    """A release triggered by alice with a verdict for ``gates`` (the last waived), approved by ``approvers``."""
    ledger.record_release(release_id, service="sap-llm", environment="production", version="2.0.0",
                          profile="production", triggered_by="alice", spec_digest="d", blue_slot="blue",
                          writer=WRITER)
    for gate in gates:
        verdict = Verdict.WAIVED if gate == GATES[-1] else Verdict.PASSED
        ledger.record_gate(release_id, gate=gate, phase="preflight", kind="report_metric",
                           evidence=Evidence(verdict, 1, ">= 1"), writer=WRITER)
    for approval, approver in zip(APPROVALS, approvers, strict=True):
        ledger.record_approval(release_id, gate=approval, decision="approved", decided_by=approver,
                               channel="slack" if approver.startswith("slack:") else "airflow", detail="",
                               writer=WRITER)
    ledger.record_event(release_id, "promoted", "2.0.0 serves 100%", WRITER)


def test_complete_releases_are_ok(ledger, check):
    promoted_release(ledger, "rel-1")
    promoted_release(ledger, "rel-2", approvers=("slack:U0BOB", "carol"))
    finding = judge(check, context_for(ledger))
    assert (finding.measured, finding.severity) == (0, Severity.OK)
    assert finding.detail == "all 2 releases of the period carry complete evidence"


def test_each_incomplete_release_is_named_with_what_it_lacks(ledger, check):
    promoted_release(ledger, "rel-complete")
    promoted_release(ledger, "rel-missing-gate", gates=GATES[:2])
    promoted_release(ledger, "rel-own-approval", approvers=("bob", "slack:U0ALICE"))
    promoted_release(ledger, "rel-unverified-rollback")
    ledger.record_rollback("rel-unverified-rollback", cause="step_100: p95", blue_weight_after=100,
                           green_removed=True, blue_healthy=False, detail="blue not ready",
                           started_at=datetime.now(timezone.utc).isoformat(), writer=WRITER)
    ledger.record_release("rel-unfinished", service="sap-llm", environment="production", version="2.0.1",
                          profile="production", triggered_by="alice", spec_digest="d", blue_slot="blue",
                          writer=WRITER)
    finding = judge(check, context_for(ledger))
    parts = dict(part.split(": ", 1) for part in finding.detail.split("; "))
    assert set(parts) == {"rel-missing-gate", "rel-own-approval", "rel-unverified-rollback", "rel-unfinished"}
    assert (finding.measured, finding.severity) == (len(parts), Severity.WARNING)
    assert parts["rel-missing-gate"] == "1 of 3 gates without a verdict (dr_rto)"
    assert parts["rel-own-approval"] == ("approval full_traffic_go approved by slack:U0ALICE, who triggered the "
                                         "release (four eyes)")
    assert parts["rel-unverified-rollback"] == ("rollback not verified (blue weight 100 %, green removed True, "
                                                "blue healthy False)")
    assert parts["rel-unfinished"] == "no outcome recorded"


def test_a_release_that_failed_before_traffic_needs_no_later_gates(ledger, check):
    ledger.record_release("rel-failed", service="sap-llm", environment="production", version="2.0.0",
                          profile="production", triggered_by="alice", spec_digest="d", blue_slot="blue",
                          writer=WRITER)
    ledger.record_gate("rel-failed", gate=GATES[0], phase="model_validation", kind="job_result",
                       evidence=Evidence(Verdict.FAILED, 0.91, ">= 0.95"), writer=WRITER)
    ledger.record_event("rel-failed", "failed", "gate model_accuracy failed", WRITER)
    finding = judge(check, context_for(ledger))
    assert (finding.measured, finding.severity) == (0, Severity.OK)


def test_a_rolled_back_release_without_a_rollback_record_is_incomplete(ledger, check):
    promoted_release(ledger, "rel-1")
    ledger.record_event("rel-1", "rolled_back", "rolled back to blue", WRITER)
    finding = judge(check, context_for(ledger))
    assert finding.measured == 1
    assert finding.detail == "rel-1: outcome rolled_back but no rollback recorded"


def test_another_services_releases_are_not_judged(ledger, check):
    promoted_release(ledger, "rel-1", gates=())
    finding = judge(check, context_for(ledger, service="other-service"))
    assert (finding.measured, finding.detail) == (0, "no release started in the period")


def test_compliance_without_a_ledger_is_no_data(check):
    finding = judge(check, context_for(None))
    assert finding.measured is None and finding.severity is Severity.CRITICAL
    assert "no release ledger" in finding.detail


def test_compliance_without_the_spec_gates_is_no_data(ledger, check):
    context = context_for(ledger)
    context.gates = ()
    finding = judge(check, context)
    assert finding.measured is None and finding.severity is Severity.CRITICAL
    assert "gate names were not given" in finding.detail
