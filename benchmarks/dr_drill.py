"""Disaster-recovery drill on a ledger holding 1,000 releases' records (each with the spec's 122 gate results, an
event, and a completed rollback for every third): the backup's time and size, then RTO (restore into a scratch
database and every check of the drill) and RPO (the backup's age when the drill starts, right after it), median of
``--runs``; the same core functions the sap_llm_dr_drill DAG runs. RPO here is the floor a backup can give: in
service it is this plus the time since the last scheduled backup (the spec's ``backup_schedule``).

    .venv/bin/python benchmarks/dr_drill.py [--releases 1000] [--gates 122] [--runs 3]
Goal: RTO < 60 min and RPO < 5 min (checklist section 6).
"""

from __future__ import annotations

import argparse
import atexit
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sap_llm_release.ledger import Ledger, Writer  # noqa: E402
from sap_llm_release.recovery.backups import take_backup  # noqa: E402
from sap_llm_release.recovery.drill import StoreResult, drill_outcome, drill_store  # noqa: E402
from sap_llm_release.rehearsal.ledger_history import record_releases  # noqa: E402

WRITER = Writer("benchmark", "dr_drill", "backup", 1)


def one_drill(ledger: Ledger, directory: Path, run: int) -> tuple[float, float, float, int]:
    """(backup seconds, RTO seconds, RPO seconds, backup bytes) of one backup and the drill that restores it."""
    started = time.monotonic()
    backup = take_backup("ledger", ledger.url, directory / "backups", datetime.now(timezone.utc))
    backup_seconds = time.monotonic() - started
    ledger.record_backup(f"benchmark-{run}", "sap-llm", backup, WRITER)
    drill_started = datetime.now(timezone.utc)
    recorded = ledger.newest_backup("sap-llm", "ledger", before=drill_started)
    drill = drill_store("ledger", ledger.url, recorded, ledger.append_only_tables(), directory / "scratch")
    outcome = drill_outcome(drill_started, [StoreResult.of(drill)], ["ledger"])
    if not outcome.passed:
        raise SystemExit(f"the drill failed: {outcome.failures}")
    return backup_seconds, outcome.rto_seconds, outcome.rpo_seconds, backup.size_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=1000)
    parser.add_argument("--gates", type=int, default=122)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="dr-drill-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    ledger = Ledger(f"sqlite:///{directory / 'ledger.db'}")
    ledger.migrate()
    started = time.monotonic()
    record_releases(ledger, args.releases, gates_each=args.gates)
    print(f"ledger: {args.releases} releases x {args.gates} gates written in {time.monotonic() - started:.1f} s")
    runs = [one_drill(ledger, directory, run) for run in range(args.runs)]
    backup_s, rto_s, rpo_s, size = (statistics.median(column) for column in zip(*runs, strict=True))
    print(f"backup: {backup_s:.2f} s, {size / 1e6:.1f} MB")
    print(f"RTO: {rto_s:.2f} s ({rto_s / 60:.3f} min) median of {args.runs} drills (target < 60 min)")
    print(f"RPO: {rpo_s:.2f} s ({rpo_s / 60:.3f} min) median of {args.runs} drills (target < 5 min)")


if __name__ == "__main__":
    main()
