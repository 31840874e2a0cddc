"""The disaster-recovery DAGs run (``dag.test()``): ``sap_llm_backup`` backs a ledger holding real release records
and the rehearsal's two data stores up; ``sap_llm_dr_drill`` restores them, passes, and records RTO, RPO and every
check, which the dr_* gates then read; a corrupted backup makes the next drill fail, naming the table."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.checks.recovery import DrDrill, DrDrillParams
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.ledger import Ledger
from sap_llm_release.rehearsal.ledger_history import ledger_with_releases, record_releases

STORES = Path(__file__).resolve().parents[2] / ".models" / "rehearsal" / "stores"


@pytest.fixture
def stores(airflow_db, tmp_path, monkeypatch) -> Ledger:
    """A ledger with 30 releases' records and copies of the rehearsal's knowledge base and process memory graph,
    each at its Airflow connection."""
    ledger = ledger_with_releases(tmp_path, 30)
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_LEDGER",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "ledger.db")}))
    for store in ("knowledge_base", "process_memory_graph"):
        assert (STORES / f"{store}.sqlite").exists(), "make setup builds the rehearsal's data stores"
        shutil.copyfile(STORES / f"{store}.sqlite", tmp_path / f"{store}.sqlite")
        monkeypatch.setenv(f"AIRFLOW_CONN_SAP_LLM_{store.upper()}",
                           json.dumps({"conn_type": "sqlite", "host": str(tmp_path / f"{store}.sqlite")}))
    return ledger


def run(dag_id: str) -> str:
    from tests.support.runs import complete_dag_test_harness, project_dags

    complete_dag_test_harness()
    dag_run = project_dags()[dag_id].test(run_conf={"profile": "rehearsal"})
    return str(getattr(dag_run.state, "value", dag_run.state))


def gate(ledger: Ledger, metric: str, threshold: Threshold):
    return DrDrill().run(DrDrillParams(metric=metric), threshold, CheckContext(service="sap-llm", ledger=ledger))


def test_a_drill_restores_the_newest_backups_and_a_corrupted_one_fails_naming_the_table(stores):
    assert run("sap_llm_backup") == "success"
    backups = {store: stores.backups("sap-llm", store)
               for store in ("ledger", "knowledge_base", "process_memory_graph")}
    assert all(len(rows) == 1 for rows in backups.values()), backups
    record_releases(stores, 2, prefix="after-backup")  # the live ledger goes on: the backup holds none of these

    assert run("sap_llm_dr_drill") == "success"
    drill = stores.latest_drill("sap-llm")
    assert drill["verdict"] == "passed" and drill["detail"] == ""
    assert 0 < drill["rpo_seconds"] < 300 and 0 < drill["rto_seconds"] < 3600
    checks = stores.drill_checks(drill["drill_id"])
    assert {row["store"] for row in checks} == {"ledger", "knowledge_base", "process_memory_graph"}
    assert all(row["verdict"] == "passed" for row in checks)
    assert {("gate_results", "rows_match_source"), ("apis", "checksum")} <= {
        (row["subject"], row["check_name"]) for row in checks}
    assert gate(stores, "rpo_minutes", Threshold(op="<", value=5, unit="min")).verdict is Verdict.PASSED
    assert gate(stores, "recovery_succeeded", Threshold(op="==", value=1)).verdict is Verdict.PASSED

    newest = Path(backups["ledger"][0]["location"])
    with closing(sqlite3.connect(newest)) as db:
        db.execute("DROP TRIGGER release_events_append_only_update")
        db.execute("UPDATE release_events SET event = 'promoted' WHERE event = 'rolled_back'")
        db.commit()
    assert run("sap_llm_dr_drill") == "failed"
    failed = stores.latest_drill("sap-llm")
    assert failed["verdict"] == "failed" and "ledger.release_events checksum" in failed["detail"]
    assert "ledger.release_events rows_match_source: 10 differing" in failed["detail"]
    assert gate(stores, "recovery_succeeded", Threshold(op="==", value=1)).verdict is Verdict.FAILED
