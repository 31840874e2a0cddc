"""The dr_* gates and the rollback gate read the ledger: the latest drill's RTO, RPO and verdict (none, or one too
old, fails), and the newest completed rollback's age (none fails)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from sap_llm_release.checks.base import CheckContext, Params
from sap_llm_release.checks.recovery import DrDrill, DrDrillParams, RollbackTested
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.ledger import Ledger
from sap_llm_release.recovery.drill import DrillOutcome
from sap_llm_release.rehearsal.ledger_history import WRITER, record_releases

RTO = Threshold(op="<", value=60, unit="min")


def drilled(tmp_path, outcome: DrillOutcome) -> CheckContext:
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    ledger.record_drill("sap_llm_dr_drill:manual__1", service="sap-llm",
                        started_at=datetime.now(timezone.utc) - timedelta(seconds=30), outcome=outcome,
                        triggered_by="manual", writer=WRITER)
    return CheckContext(service="sap-llm", ledger=ledger)


def test_the_latest_drill_gives_rto_rpo_and_its_verdict(tmp_path):
    context = drilled(tmp_path, DrillOutcome(True, 90.0, 150.0, []))
    rto = DrDrill().run(DrDrillParams(metric="rto_minutes"), RTO, context)
    assert (rto.verdict, rto.measured) == (Verdict.PASSED, 1.5)
    rpo = DrDrill().run(DrDrillParams(metric="rpo_minutes"), Threshold(op="<", value=2, unit="min"), context)
    assert (rpo.verdict, rpo.measured) == (Verdict.FAILED, 2.5)
    succeeded = DrDrill().run(DrDrillParams(metric="recovery_succeeded"), Threshold(op="==", value=1), context)
    assert succeeded.verdict is Verdict.PASSED
    assert succeeded.evidence_uri == "ledger:dr_drills/sap_llm_dr_drill:manual__1"


def test_a_failed_drill_fails_recovery_and_leaves_rpo_unmeasured(tmp_path):
    context = drilled(tmp_path, DrillOutcome(False, None, None, ["knowledge_base.backup exists: none recorded"]))
    succeeded = DrDrill().run(DrDrillParams(metric="recovery_succeeded"), Threshold(op="==", value=1), context)
    assert succeeded.verdict is Verdict.FAILED and succeeded.measured == 0
    assert "knowledge_base.backup exists: none recorded" in succeeded.detail
    rpo = DrDrill().run(DrDrillParams(metric="rpo_minutes"), RTO, context)
    assert rpo.verdict is Verdict.FAILED and rpo.measured is None and "measured no RPO" in rpo.detail


def test_no_drill_or_a_stale_one_fails(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    none = DrDrill().run(DrDrillParams(metric="rto_minutes"), RTO, CheckContext(service="sap-llm", ledger=ledger))
    assert none.verdict is Verdict.FAILED and "no disaster-recovery drill" in none.detail
    context = drilled(tmp_path, DrillOutcome(True, 90.0, 150.0, []))
    time.sleep(1.1)  # the drill is now older than the one second this gate allows
    stale = DrDrill().run(DrDrillParams(metric="rto_minutes", max_age="1s"), RTO, context)
    assert stale.verdict is Verdict.FAILED and "days old" in stale.detail


def test_the_rollback_gate_reads_the_newest_completed_rollback(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    context = CheckContext(service="sap-llm", ledger=ledger)
    within = Threshold(op="<=", value=30, unit="d")
    missing = RollbackTested().run(Params(), within, context)
    assert missing.verdict is Verdict.FAILED and "no completed rollback" in missing.detail
    record_releases(ledger, 1)  # the first release of the batch rolls back, completed
    found = RollbackTested().run(Params(), within, context)
    assert found.verdict is Verdict.PASSED and 0 <= found.measured < 0.01
    assert found.evidence_uri == "ledger:rollbacks/rel-00000" and "error rate" in found.detail
