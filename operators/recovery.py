"""Disaster recovery in Airflow: a task per store that backs it up, a task per store that restores its newest
backup in a drill, and the task that records the drill's RTO, RPO and verdict. The work is the domain core's
(sap_llm_release.recovery); these tasks find the stores' databases (the ledger's connection, the data stores'
connections or the profile's target) and write everything to the ledger."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from operators.base import ReleaseOperator
from operators.runtime import LEDGER_CONN_ID, ConfiguredServices, connection_url, spec_at
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.recovery.backups import take_backup
from sap_llm_release.recovery.drill import StoreResult, drill_outcome, drill_store
from sap_llm_release.recovery.spec import DisasterRecovery
from sap_llm_release.spec import ReleaseSpec
from sap_llm_release.targets import TargetError, build_target


class RecoveryOperator(ReleaseOperator):
    """A task of the backup or drill DAG; ``store`` names the database it works on (none for the outcome)."""

    ui_color = "#fdf2e9"

    def __init__(self, *, store: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    @cached_property
    def spec(self) -> ReleaseSpec:
        return spec_at(self.spec_path)

    @cached_property
    def recovery(self) -> DisasterRecovery:
        if self.spec.disaster_recovery is None:
            raise AirflowFailException(f"{self.spec_path}: the spec has no disaster_recovery section")
        return self.spec.disaster_recovery

    @cached_property
    def ledger(self) -> Ledger:
        ledger = Ledger(connection_url(LEDGER_CONN_ID))
        ledger.migrate()
        return ledger

    def store_url(self, store: str, context: Any) -> str:
        """The ledger's connection, or the data store's connection, else the profile's target's URL for it."""
        if store == "ledger":
            return connection_url(LEDGER_CONN_ID)
        try:
            target_services = build_target(self.spec.profile(context["params"]["profile"]).target).services
        except TargetError:
            target_services = {}
        try:
            return ConfiguredServices(target_services)[store]
        except KeyError:
            raise AirflowFailException(f"store {store}: no connection and no URL in the target") from None

    @staticmethod
    def writer(context: Any) -> Writer:
        ti = context["ti"]
        return Writer(ti.dag_id, ti.run_id, ti.task_id, ti.try_number)


class BackupStoreOperator(RecoveryOperator):
    """Back one store up, record the backup, and keep the newest ``keep_backups`` files of it."""

    def execute(self, context: Any) -> dict[str, Any]:
        url = self.store_url(self.store, context)
        now = datetime.now(timezone.utc)
        directory = self.recovery.directory(self.store)
        backup = take_backup(self.store, url, directory, now)
        backup_id = f"{self.spec.service}:{self.store}:{now.strftime('%Y%m%dT%H%M%S%fZ')}"
        self.ledger.record_backup(backup_id, self.spec.service, backup, self.writer(context))
        for stale in sorted(directory.glob(f"{self.store}-*"))[:-self.recovery.keep_backups]:
            stale.unlink(missing_ok=True)
        self.log.info("backed %s up to %s (%d bytes, %d tables)", self.store, backup.path, backup.size_bytes,
                      len(backup.tables))
        return {"backup_id": backup_id, "path": str(backup.path), "sha256": backup.sha256}


def drill_started_at(context: Any) -> datetime:
    """When the drill started: its DAG run's start, shared by every store's restore."""
    started = context["dag_run"].start_date or datetime.now(timezone.utc)
    return started if started.tzinfo else started.replace(tzinfo=timezone.utc)


def drill_id(context: Any) -> str:
    """The drill's id in the ledger: its DAG run."""
    return f"{context['ti'].dag_id}:{context['ti'].run_id}"


class DrillStoreOperator(RecoveryOperator):
    """Restore the store's newest backup taken before the drill started, check it, and record every check."""

    def execute(self, context: Any) -> dict[str, Any]:
        started = drill_started_at(context)
        backup = self.ledger.newest_backup(self.spec.service, self.store, before=started)
        append_only = self.ledger.append_only_tables() if self.store == "ledger" else []
        scratch = self.recovery.directory(self.store).parent / "drill-scratch"
        drill = drill_store(self.store, self.store_url(self.store, context), backup, append_only, scratch)
        writer = self.writer(context)
        for check in drill.checks:
            self.ledger.record_drill_check(drill_id(context), check, backup.backup_id if backup else None, writer)
        for failure in drill.failures():
            self.log.error("%s", failure)
        return StoreResult.of(drill).as_dict()


class RecordDrillOperator(RecoveryOperator):
    """Record the drill's RTO, RPO and verdict from every store's result; a failed drill fails the run."""

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        pulled = [ti.xcom_pull(task_ids=f"restore.{store}") for store in self.recovery.stores]
        results = [StoreResult.from_dict(result) for result in pulled if result]  # a failed restore task left none
        started = drill_started_at(context)
        outcome = drill_outcome(started, results, list(self.recovery.stores))
        triggered_by = (context["dag_run"].conf or {}).get("triggered_by") or context["dag_run"].run_type
        self.ledger.record_drill(drill_id(context), service=self.spec.service, started_at=started, outcome=outcome,
                                 triggered_by=str(triggered_by), writer=self.writer(context))
        summary = {"rto_seconds": outcome.rto_seconds, "rpo_seconds": outcome.rpo_seconds, "passed": outcome.passed}
        if not outcome.passed:
            raise AirflowFailException("disaster-recovery drill failed: " + "; ".join(outcome.failures)[:4000])
        return summary
