"""Disaster recovery of SAP_LLM (checklist section 6) as two DAGs. ``sap_llm_backup`` backs the ledger and the data
stores up on the spec's schedule (SQLite's online backup API, ``pg_dump`` for PostgreSQL), each backup recorded in
the ledger with the fingerprints of what it holds. ``sap_llm_dr_drill`` (weekly, and on demand) restores each
store's newest backup into a scratch database, checks row counts and checksums against the backup's record and the
append-only ledger tables against the live ledger, and records RTO (restore time), RPO (newest backup's age) and
every check in the ledger, where the release's dr_* gates read them. A store that cannot be proven whole fails."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, CronTriggerTimetable, TaskGroup

from operators.audit_builder import audit_params
from operators.recovery import BackupStoreOperator, DrillStoreOperator, RecordDrillOperator
from operators.runtime import release_spec_path
from sap_llm_release.spec import load_spec

SPEC_PATH = release_spec_path()
SPEC = load_spec(SPEC_PATH)
RECOVERY = SPEC.disaster_recovery
# what both DAGs share: one run at a time, the audited profile's form, their tags and this description
COMMON = {"catchup": False, "max_active_runs": 1, "params": {"profile": audit_params(SPEC)["profile"]},
          "tags": ["disaster-recovery", SPEC.service], "doc_md": __doc__}

if RECOVERY is not None:
    with DAG(
        "sap_llm_backup",
        description=f"Back {SPEC.service}'s ledger and data stores up",
        schedule=CronTriggerTimetable(RECOVERY.backup_schedule, timezone="UTC"),
        default_args={"retries": 1, "retry_delay": timedelta(seconds=30), "execution_timeout": timedelta(minutes=30)},
        **COMMON,
    ):
        with TaskGroup("backup"):
            for store in RECOVERY.stores:
                BackupStoreOperator(task_id=store, store=store, spec_path=SPEC_PATH)

    with DAG(
        "sap_llm_dr_drill",
        description=f"Restore {SPEC.service}'s newest backups and measure RTO and RPO",
        schedule=CronTriggerTimetable(RECOVERY.drill_schedule, timezone="UTC"),
        default_args={"execution_timeout": timedelta(hours=1)},
        **COMMON,
    ):
        with TaskGroup("restore") as restore:
            for store in RECOVERY.stores:
                DrillStoreOperator(task_id=store, store=store, spec_path=SPEC_PATH)
        restore >> RecordDrillOperator(task_id="record_drill", spec_path=SPEC_PATH, trigger_rule="all_done")
