"""The deferrable sensor that watches the SLOs for one traffic step's whole window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from operators.runtime import ReleaseRun
from operators.triggers import SLOWindowTrigger
from sap_llm_release.targets import slots_for

DEFERRAL_GRACE = timedelta(minutes=5)
WINDOW_EVENT_KEYS = {"status", "reason", "checks", "window_start", "window_end"}


class SLOWindowSensor(BaseOperator):
    """Defer to :class:`SLOWindowTrigger` for the step's window (with ``bake``: the bake's, at 100 % after the last
    step, while blue stays up); fail as soon as the failure limit is reached."""

    template_fields = ()
    ui_color = "#e8f4fd"

    def __init__(self, *, spec_path: str, weight: int, bake: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
        self.weight = weight
        self.bake = bake

    @property
    def window_name(self) -> str:
        return "bake" if self.bake else f"step_{self.weight:03d}"

    def execute(self, context: Any) -> None:
        run = ReleaseRun(self.spec_path, context)
        spec, profile = run.spec, run.request.profile
        window = spec.bake_window(profile) if self.bake else spec.window_for(spec.step(self.weight), profile)
        green_slot = slots_for(run.blue_slot)["green"]
        slos = run.green_slo_queries()
        started = datetime.now(timezone.utc)
        self.log.info("watching %d SLOs and the readiness of green (slot %s) at %d%% for %s", len(slos), green_slot,
                      self.weight, window)
        self.defer(
            trigger=SLOWindowTrigger(
                prometheus=run.prometheus.to_dict(),
                slos=[vars(slo) for slo in slos],
                failure_limit=spec.analysis.failure_limit,
                interval_s=spec.analysis_interval(profile).total_seconds(),
                window_start=started.isoformat(),
                window_end=(started + window).isoformat(),
                ready_url=run.green_ready_url(),
            ),
            method_name="execute_complete",
            timeout=window + DEFERRAL_GRACE,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any] | None:
        if not WINDOW_EVENT_KEYS <= set(event):
            # Not this sensor's event: on a SQLite metadata database Airflow can give a new trigger the id of one
            # just deleted, and an event the old trigger still fires resumes this task. Watch a whole window again.
            self.log.warning("resumed with an event that is not an SLO window's (keys %s); watching again",
                             sorted(event))
            return self.execute(context)
        run = ReleaseRun(self.spec_path, context)
        start, end = (datetime.fromisoformat(event[key]) for key in ("window_start", "window_end"))
        run.ledger.record_slo_window(
            run.release_id,
            step=self.window_name,
            green_weight=self.weight,
            verdict=event["status"],
            reason=event["reason"],
            window_seconds=(end - start).total_seconds(),
            checks=event["checks"],
            started_at=event["window_start"],
            writer=run.writer,
        )
        for tally in event["checks"]:
            self.log.info(
                "SLO %s: %d checks, %d failed, %d without data, last %s, worst %s (threshold %s)",
                tally["name"], tally["checks"], tally["failures"], tally["no_data"],
                tally["last"], tally["worst"], tally["threshold"],
            )
        if event["status"] != "passed":
            what = "the bake at 100%" if self.bake else f"traffic step {self.weight}%"
            raise AirflowFailException(f"{what} failed its SLO analysis: {event['reason']}")
        return event
