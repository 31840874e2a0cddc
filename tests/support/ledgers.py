"""A migrated SQLite ledger holding one release, for tests of what records against it."""

from __future__ import annotations

from pathlib import Path

from sap_llm_release.ledger import Ledger, Writer


def ledger_with_release(directory: Path, release_id: str, writer: Writer, triggered_by: str = "alice") -> Ledger:
    ledger = Ledger(f"sqlite:///{directory / 'ledger.db'}")
    ledger.migrate()
    ledger.record_release(release_id, service="sap-llm", environment="rehearsal", version="1.1.0",
                          profile="rehearsal", triggered_by=triggered_by, spec_digest="d", blue_slot="blue",
                          writer=writer)
    return ledger
