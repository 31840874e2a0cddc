"""Backups taken online and restored in a drill, on SQLite and PostgreSQL: a faithful backup passes every check, a
corrupted one fails naming its table, a store without a backup fails the drill and leaves RTO and RPO unmeasured."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text

from sap_llm_release.ledger import Ledger
from sap_llm_release.recovery.backups import BackupError, take_backup
from sap_llm_release.recovery.drill import RecordedBackup, StoreResult, drill_outcome, drill_store
from sap_llm_release.rehearsal.ledger_history import WRITER, ledger_with_releases, record_releases

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def recorded(ledger: Ledger, store: str = "ledger") -> RecordedBackup:
    return ledger.newest_backup("sap-llm", store, before=datetime.now(timezone.utc) + timedelta(minutes=1))


def backed_up(ledger: Ledger, directory) -> RecordedBackup:
    backup = take_backup("ledger", ledger.url, directory, datetime.now(timezone.utc))
    ledger.record_backup("b1", "sap-llm", backup, WRITER)
    return recorded(ledger)


def test_a_faithful_backup_passes_every_check_while_the_ledger_goes_on_growing(tmp_path):
    ledger = ledger_with_releases(tmp_path, 4)
    backup = backed_up(ledger, tmp_path / "backups")
    assert backup.tables["gate_results"].rows == 20 and backup.tables["releases"].rows == 4
    record_releases(ledger, 2, prefix="later")  # written after the backup: the restore has none of them
    drill = drill_store("ledger", ledger.url, backup, ledger.append_only_tables(), tmp_path / "scratch")
    assert drill.passed, drill.failures()
    checks = {(c.subject, c.check) for c in drill.checks}
    assert {("gate_results", "checksum"), ("gate_results", "rows_match_source"), ("releases", "row_count"),
            (backup.path.name, "file_sha256"), (backup.path.name, "restore")} <= checks
    assert "environment_locks" not in {c.subject for c in drill.checks if c.check == "rows_match_source"}
    assert drill.restore_seconds > 0 and not list((tmp_path / "scratch").iterdir())  # the scratch copy is gone


def test_a_corrupted_backup_fails_naming_its_table(tmp_path):
    ledger = ledger_with_releases(tmp_path, 3)
    backup = backed_up(ledger, tmp_path / "backups")
    with closing(sqlite3.connect(backup.path)) as db:
        db.execute("DROP TRIGGER gate_results_append_only_update")
        db.execute("UPDATE gate_results SET measured_value = 42 WHERE gate = 'gate_1'")
        db.commit()
    drill = drill_store("ledger", ledger.url, backup, ledger.append_only_tables(), tmp_path / "scratch")
    failed = {(c.subject, c.check) for c in drill.checks if not c.passed}
    assert failed == {(backup.path.name, "file_sha256"), ("gate_results", "checksum"),
                      ("gate_results", "rows_match_source")}
    assert any(f.startswith("ledger.gate_results rows_match_source: 3 differing") for f in drill.failures())


def test_a_missing_backup_file_and_no_backup_at_all_fail(tmp_path):
    ledger = ledger_with_releases(tmp_path, 1)
    backup = backed_up(ledger, tmp_path / "backups")
    backup.path.unlink()
    assert drill_store("ledger", ledger.url, backup, [], tmp_path).failures() == [
        f"ledger.{backup.path.name} exists: missing (expected the backup file)"]
    nothing = drill_store("knowledge_base", "sqlite:///kb.db", None, [], tmp_path)
    assert not nothing.passed
    assert nothing.failures() == ["knowledge_base.backup exists: none recorded (expected a backup)"]


def test_a_missing_database_file_is_not_backed_up_and_an_empty_backup_proves_nothing(tmp_path):
    with pytest.raises(BackupError, match="does not exist"):
        take_backup("knowledge_base", f"sqlite:///{tmp_path / 'absent.sqlite'}", tmp_path / "b", NOW)
    assert not (tmp_path / "absent.sqlite").exists()  # not created by asking
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    empty = take_backup("knowledge_base", f"sqlite:///{tmp_path / 'empty.sqlite'}", tmp_path / "b", NOW)
    recorded_empty = RecordedBackup("b0", "knowledge_base", "sqlite", empty.path, empty.sha256, NOW, empty.tables)
    drill = drill_store("knowledge_base", f"sqlite:///{tmp_path / 'empty.sqlite'}", recorded_empty, [], tmp_path)
    assert not drill.passed
    assert drill.failures() == [f"knowledge_base.{empty.path.name} tables: none recorded (expected at least one table)"]


def test_rto_sums_the_restores_and_rpo_is_the_oldest_newest_backup():
    results = [StoreResult("ledger", NOW - timedelta(minutes=3), 2.5, []),
               StoreResult("knowledge_base", NOW - timedelta(minutes=1), 1.5, [])]
    outcome = drill_outcome(NOW, results, ["ledger", "knowledge_base"])
    assert (outcome.passed, outcome.rto_seconds, outcome.rpo_seconds) == (True, 4.0, 180.0)
    missing = drill_outcome(NOW, results[:1] + [StoreResult("knowledge_base", None, None, ["kb: none"])],
                            ["ledger", "knowledge_base", "process_memory_graph"])
    assert (missing.passed, missing.rto_seconds, missing.rpo_seconds) == (False, None, None)
    assert missing.failures == ["process_memory_graph: not drilled", "kb: none"]
    assert StoreResult.from_dict(results[0].as_dict()) == results[0]


@pytest.fixture
def postgres_ledger_url(postgres_url):
    """A database of its own on the test PostgreSQL server (a backup is of a whole database), dropped afterwards."""
    name = f"dr_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.mark.postgres
def test_a_postgresql_ledger_is_dumped_restored_into_a_scratch_database_and_checked(postgres_ledger_url, tmp_path):
    ledger = Ledger(postgres_ledger_url)
    ledger.migrate()
    record_releases(ledger, 3)
    backup = take_backup("ledger", postgres_ledger_url, tmp_path / "backups", datetime.now(timezone.utc))
    assert backup.path.suffix == ".dump" and backup.tables["gate_results"].rows == 15
    ledger.record_backup("pg-1", "sap-llm", backup, WRITER)
    record_releases(ledger, 1, prefix="later")
    drill = drill_store("ledger", postgres_ledger_url, recorded(ledger), ledger.append_only_tables(), tmp_path)
    assert drill.passed, drill.failures()
    assert {"gate_results", "dr_backups"} <= {c.subject for c in drill.checks if c.check == "rows_match_source"}
    ledger.engine.dispose()
