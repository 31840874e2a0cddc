"""What the ledger proves about recovery: the latest disaster-recovery drill (``sap_llm_dr_drill``: its measured RTO
and RPO and whether every store came back whole) and the latest rollback that left blue serving everything. A drill
older than ``max_age`` proves nothing about today's stores and fails; none at all fails too."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.durations import parse_duration
from sap_llm_release.evidence import Evidence, Threshold
from sap_llm_release.timestamps import recorded_time

MaxAge = Annotated[timedelta, BeforeValidator(parse_duration)]


def _age(recorded: datetime | str, now: datetime) -> timedelta:
    return now - recorded_time(recorded)


class DrDrillParams(Params):
    metric: Literal["rto_minutes", "rpo_minutes", "recovery_succeeded"]
    max_age: MaxAge = Field(default=timedelta(days=8), description="an older drill fails")


class DrDrill(Check):
    """Measured from the latest drill: RTO or RPO in minutes, or 1 / 0 for a drill that restored every store
    whole. A drill that had no backup to restore measured no RTO or RPO: those gates fail for want of data."""

    Params = DrDrillParams

    def run(self, params: DrDrillParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        drill = context.require("ledger").latest_drill(context.service)
        if drill is None:
            return Evidence.unmeasured(threshold, f"no disaster-recovery drill of {context.service} is recorded "
                                       "(the sap_llm_dr_drill DAG records one)", "ledger:dr_drills")
        uri = f"ledger:dr_drills/{drill['drill_id']}"
        age = _age(drill["finished_at"], datetime.now(timezone.utc))
        if age > params.max_age:
            return Evidence.unmeasured(threshold, f"the latest drill ({drill['drill_id']}) is "
                                       f"{age.total_seconds() / 86400:.1f} days old: older than {params.max_age} "
                                       "proves nothing about today's stores", uri)
        if params.metric == "recovery_succeeded":
            value = 1 if drill["verdict"] == "passed" else 0
            detail = f"drill {drill['drill_id']} {drill['verdict']}" + (f": {drill['detail']}" if drill["detail"]
                                                                         else "")
            return Evidence.compare(value, threshold, detail[:2000], evidence_uri=uri)
        seconds = drill["rto_seconds" if params.metric == "rto_minutes" else "rpo_seconds"]
        what = "RTO (restore and checks)" if params.metric == "rto_minutes" else "RPO (newest backup's age)"
        if seconds is None:
            return Evidence.unmeasured(threshold, f"drill {drill['drill_id']} measured no {what}: "
                                       f"{drill['detail'] or 'a store had no backup'}"[:2000], uri)
        return Evidence.compare(round(seconds / 60, 3), threshold, f"{what} of drill {drill['drill_id']}",
                                evidence_uri=uri)


class RollbackTested(Check):
    """Measured: the age in days of the latest rollback of the service that left blue at 100 %, healthy, and green
    removed (a rehearsal's counts: it ran the release DAG's own rollback); the threshold bounds the age."""

    def run(self, params: Params, threshold: Threshold | None, context: CheckContext) -> Evidence:
        rollback = context.require("ledger").latest_completed_rollback(context.service)
        if rollback is None:
            return Evidence.unmeasured(threshold, f"no completed rollback of {context.service} is recorded in the "
                                       "ledger: rehearse one (a release that breaches its SLOs rolls back)",
                                       "ledger:rollbacks")
        age = _age(rollback["completed_at"], datetime.now(timezone.utc))
        return Evidence.compare(round(age.total_seconds() / 86400, 3), threshold,
                                f"days since release {rollback['release_id']} ({rollback['environment']}) rolled "
                                f"back: {rollback['cause']}"[:2000],
                                evidence_uri=f"ledger:rollbacks/{rollback['release_id']}")
