"""A ledger holding release records written through the ledger's own API (releases, gate results, events and
completed rollbacks), for the disaster-recovery benchmark and tests: what a drill backs up and restores."""

from __future__ import annotations

from pathlib import Path

from sap_llm_release.evidence import Evidence, Verdict
from sap_llm_release.ledger import Ledger, Writer

WRITER = Writer("sap_llm_release", "manual__1", "preflight.gate", 1)


def record_releases(ledger: Ledger, count: int, *, gates_each: int = 5, prefix: str = "rel") -> None:
    """``count`` releases with ``gates_each`` gate results, an event and (every third) a completed rollback each."""
    for index in range(count):
        release_id = f"{prefix}-{index:05d}"
        ledger.record_release(release_id, service="sap-llm", environment="staging", version=f"2.{index}.0",
                              profile="rehearsal", triggered_by="alice", spec_digest="d", blue_slot="blue",
                              writer=WRITER)
        for gate in range(gates_each):
            ledger.record_gate(release_id, gate=f"gate_{gate}", phase="preflight", kind="prometheus_query",
                               evidence=Evidence(Verdict.PASSED, 0.01 * gate, "< 1", "measured", "prom:q"),
                               writer=WRITER)
        ledger.record_event(release_id, "promoted" if index % 3 else "rolled_back", "", WRITER)
        if index % 3 == 0:
            ledger.record_rollback(release_id, cause="error rate", blue_weight_after=100, green_removed=True,
                                   blue_healthy=True, detail="", started_at="2026-11-30T10:00:00+00:00",
                                   writer=WRITER)


def ledger_with_releases(directory: Path, count: int = 3) -> Ledger:
    ledger = Ledger(f"sqlite:///{directory / 'ledger.db'}")
    ledger.migrate()
    record_releases(ledger, count)
    return ledger
