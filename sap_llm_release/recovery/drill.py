"""The disaster-recovery drill, one store at a time: restore the store's newest backup into a scratch database and
prove it whole (the file is the one written, every table has the rows and checksum recorded when the backup was
taken, and every append-only table's rows are rows the live store still holds unchanged). RTO is the time the
restores and their checks took; RPO is the age of the newest backup when the drill started (the data a disaster at
that moment would have lost)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sap_llm_release.recovery.backups import file_sha256, restored
from sap_llm_release.recovery.fingerprints import TableFingerprint, fingerprint_database, rows_not_in_source


@dataclass(frozen=True)
class RecordedBackup:
    """A backup as the ledger recorded it when it was taken."""

    backup_id: str
    store: str
    dialect: str
    path: Path
    sha256: str
    taken_at: datetime
    tables: dict[str, TableFingerprint]


@dataclass(frozen=True)
class DrillCheck:
    store: str
    subject: str  # a table, or the backup file
    check: str
    measured: str
    expected: str
    passed: bool
    detail: str = ""


@dataclass
class StoreDrill:
    store: str
    backup: RecordedBackup | None
    checks: list[DrillCheck] = field(default_factory=list)
    restore_seconds: float | None = None

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def failures(self) -> list[str]:
        return [f"{c.store}.{c.subject} {c.check}: {c.measured} (expected {c.expected})"
                for c in self.checks if not c.passed]


def drill_store(store: str, source_url: str, backup: RecordedBackup | None, append_only: list[str],
                scratch_dir: Path) -> StoreDrill:
    """Restore and check ``store``'s newest ``backup`` (None: there is none, which fails the drill)."""
    drill = StoreDrill(store, backup)
    if backup is None:
        drill.checks.append(DrillCheck(store, "backup", "exists", "none recorded", "a backup", False))
        return drill
    if not backup.path.is_file():
        drill.checks.append(DrillCheck(store, backup.path.name, "exists", "missing", "the backup file", False))
        return drill
    written = file_sha256(backup.path)
    drill.checks.append(DrillCheck(store, backup.path.name, "file_sha256", written, backup.sha256,
                                   written == backup.sha256))
    started = time.monotonic()
    try:
        with restored(backup.path, backup.dialect, source_url, scratch_dir) as scratch_url:
            drill.checks.append(DrillCheck(store, backup.path.name, "restore", "restored", "restored", True))
            drill.checks += _table_checks(store, backup, fingerprint_database(scratch_url))
            differing = rows_not_in_source(scratch_url, source_url, [t for t in append_only if t in backup.tables])
            drill.checks += [DrillCheck(store, table, "rows_match_source", f"{count} differing", "0 differing",
                                        count == 0, "append-only: every restored row is in the live store unchanged")
                             for table, count in sorted(differing.items())]
    except Exception as exc:  # noqa: BLE001 - BackupError or any driver's database error: a failed restore
        drill.checks.append(DrillCheck(store, backup.path.name, "restore", f"{type(exc).__name__}: {exc}",
                                       "restored", False))
    drill.restore_seconds = time.monotonic() - started
    return drill


def _table_checks(store: str, backup: RecordedBackup, restored_tables: dict[str, TableFingerprint]
                  ) -> list[DrillCheck]:
    """Each table's row count and checksum against the backup's record; a backup that recorded no table proves
    nothing restored and fails."""
    if not backup.tables:
        return [DrillCheck(store, backup.path.name, "tables", "none recorded", "at least one table", False)]
    checks = []
    for table, expected in sorted(backup.tables.items()):
        found = restored_tables.get(table)
        if found is None:
            checks.append(DrillCheck(store, table, "row_count", "table missing", str(expected.rows), False))
            continue
        checks.append(DrillCheck(store, table, "row_count", str(found.rows), str(expected.rows),
                                 found.rows == expected.rows))
        checks.append(DrillCheck(store, table, "checksum", found.sha256, expected.sha256,
                                 found.sha256 == expected.sha256))
    return checks


@dataclass(frozen=True)
class StoreResult:
    """What the drill of one store leaves for the outcome (small enough to pass between tasks)."""

    store: str
    backup_taken_at: datetime | None
    restore_seconds: float | None
    failures: list[str]

    @classmethod
    def of(cls, drill: StoreDrill) -> StoreResult:
        return cls(drill.store, drill.backup.taken_at if drill.backup else None, drill.restore_seconds,
                   drill.failures())

    def as_dict(self) -> dict:
        return {"store": self.store, "restore_seconds": self.restore_seconds, "failures": self.failures,
                "backup_taken_at": self.backup_taken_at.isoformat() if self.backup_taken_at else None}

    @classmethod
    def from_dict(cls, data: dict) -> StoreResult:
        taken = data["backup_taken_at"]
        return cls(data["store"], datetime.fromisoformat(taken) if taken else None, data["restore_seconds"],
                   list(data["failures"]))


@dataclass(frozen=True)
class DrillOutcome:
    passed: bool
    rto_seconds: float | None
    rpo_seconds: float | None
    failures: list[str]


def drill_outcome(started_at: datetime, stores: list[StoreResult], expected: list[str]) -> DrillOutcome:
    """The drill's verdict over the ``expected`` stores: RTO is the restores' time in all (one store after another,
    as a recovery would run); RPO the age, at ``started_at``, of the oldest of the stores' newest backups; both None
    when a store had no backup to restore or was not drilled."""
    drilled = {store.store: store for store in stores}
    failures = [f"{name}: not drilled" for name in expected if name not in drilled]
    failures += [failure for store in stores for failure in store.failures]
    complete = bool(expected) and all(name in drilled and drilled[name].backup_taken_at is not None
                                      and drilled[name].restore_seconds is not None for name in expected)
    rto = sum(drilled[name].restore_seconds for name in expected) if complete else None
    rpo = max((started_at - drilled[name].backup_taken_at).total_seconds() for name in expected) if complete else None
    return DrillOutcome(not failures and complete, rto, rpo, failures)
