"""The deferrable sensors that watch SLOs for a whole window: green's at a traffic step (the shift's own task, see
:class:`operators.traffic.ShiftTrafficOperator`) or in the bake, blue's after a rollback, and the alerts that must
clear before traffic moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from operators.notifications import release_notifier
from operators.runtime import ReleaseRun, off_green_at_resume
from operators.triggers import AlertsClearTrigger, SLOWindowTrigger
from sap_llm_release.targets import slots_for

DEFERRAL_GRACE = timedelta(minutes=5)
WINDOW_EVENT_KEYS = {"status", "reason", "checks", "window_start", "window_end"}


# A task that defers (a watch, green's deployment waiting for readiness) is retried once, a second later, when it
# fails for anything but its own verdict (a failed window or a green never ready raises AirflowFailException, never
# retried): a worker lost mid-resume, or Airflow 3.3's scheduler failing a deferred task on the stale executor event
# of its own defer-exit when the trigger fired within seconds (apache/airflow#66374, #67287, #72716, open in 3.3.2;
# met here through the real scheduler by a short rehearsal window, and by green's readiness wait on a busy
# scheduler). A retried watch watches a whole window again; a retried deployment finds green running and waits.
DEFERRAL_RETRIES = {"retries": 1, "retry_delay": timedelta(seconds=1)}


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

    watched = "green"

    def window(self, run: ReleaseRun) -> timedelta:
        spec, profile = run.spec, run.request.profile
        return spec.bake_window(profile) if self.bake else spec.window_for(spec.step(self.weight), profile)

    def watch(self, run: ReleaseRun) -> tuple[list, str]:
        """The SLO queries and the readiness endpoint watched."""
        return run.green_slo_queries(), run.green_ready_url()

    def execute(self, context: Any) -> None:
        self.watch_window(context)

    def watch_window(self, context: Any) -> None:
        """Defer to the window's trigger, its window starting now."""
        run = ReleaseRun(self.spec_path, context)
        window = self.window(run)
        slos, ready_url = self.watch(run)
        started = datetime.now(timezone.utc)
        self.log.info("watching %d SLOs and the readiness of %s (slot %s) at %d%% to green for %s", len(slos),
                      self.watched, slots_for(run.blue_slot)[self.watched], self.weight, window)
        self.defer(
            trigger=SLOWindowTrigger(
                prometheus=run.prometheus.to_dict(),
                slos=[vars(slo) for slo in slos],
                failure_limit=run.spec.analysis.failure_limit,
                interval_s=run.spec.analysis_interval(run.request.profile).total_seconds(),
                window_start=started.isoformat(),
                window_end=(started + window).isoformat(),
                ready_url=ready_url,
                ready_name=f"{self.watched}_ready",
                emergency=run.emergency_access() if self.watched == "green" else None,
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
            return self.watch_window(context)
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
        if lags := event.get("check_lags_s"):
            self.log.info("%d checks, at most %.3f s after they were due", len(lags), max(lags))
        for tally in event["checks"]:
            self.log.info(
                "SLO %s: %d checks, %d failed, %d without data, last %s, worst %s (threshold %s)",
                tally["name"], tally["checks"], tally["failures"], tally["no_data"],
                tally["last"], tally["worst"], tally["threshold"],
            )
        if event["status"] != "passed":
            self.window_failed(run, event["reason"], event)
        return event

    def window_failed(self, run: ReleaseRun, reason: str, event: dict[str, Any]) -> None:
        self.log.info("traffic off green: %s", off_green_at_resume(run, event, reason))
        what = "the bake at 100%" if self.bake else f"traffic step {self.weight}%"
        raise AirflowFailException(f"{what} failed its SLO analysis: {reason}")


class BlueRecoverySensor(SLOWindowSensor):
    """Rollback steps 2-3: after the rollback, blue's SLOs the spec names (``traffic.recovery.slos``) and its
    readiness are watched for the recovery window, deferred like a traffic step's; a blue that does not recover
    pages on-call again (the release's own incident) and fails."""

    ui_color = "#fadbd8"
    watched = "blue"

    def __init__(self, *, spec_path: str, **kwargs: Any) -> None:
        super().__init__(spec_path=spec_path, weight=0, **kwargs)

    @property
    def window_name(self) -> str:
        return "rollback_recovery"

    def window(self, run: ReleaseRun) -> timedelta:
        return run.spec.recovery_window(run.request.profile)

    def watch(self, run: ReleaseRun) -> tuple[list, str]:
        return run.blue_recovery_queries(), run.blue_ready_url()

    def window_failed(self, run: ReleaseRun, reason: str, event: dict[str, Any]) -> None:
        text = f"{run.spec.service}: blue did not recover after the rollback: {reason}"
        notifier = release_notifier(run)
        notifier.page("blue_not_recovered", text)
        notifier.say("blue_not_recovered", text)
        raise AirflowFailException(text)


class AlertsClearSensor(SLOWindowSensor):
    """Before green is deployed (``clear_before_deploy``) and right before the first shift (``clear_before_shift``):
    go on when none of the spec's alerts (``analysis.clear_before_traffic``) fires, else wait, deferred, for them to
    stop, at most its ``wait``; the check is recorded as a window at 0 %, and a refusal names the alerts still
    firing."""

    ui_color = "#fdedec"

    def __init__(self, *, spec_path: str, **kwargs: Any) -> None:
        super().__init__(spec_path=spec_path, weight=0, **kwargs)

    @property
    def window_name(self) -> str:
        return self.task_id.rsplit(".", 1)[-1]

    def execute(self, context: Any) -> dict[str, Any] | None:
        """Ask once here, and go on at once when nothing fires (the usual case): deferred, a trigger that fires
        within a second is what Airflow 3.3's scheduler can fail the resumed task for, on the stale executor event
        of its own defer (apache/airflow#72716; met here beside fifty busy runs, both tries). Else wait deferred."""
        run = ReleaseRun(self.spec_path, context)
        clear = run.spec.analysis.clear_before_traffic
        started = datetime.now(timezone.utc)
        trigger = AlertsClearTrigger(
            prometheus=run.prometheus.to_dict(), alerts=clear.alerts,
            interval_s=run.spec.analysis_interval(run.request.profile).total_seconds(),
            started=started.isoformat(), deadline=(started + clear.wait).isoformat(),
        )
        if (now := trigger.ask_now())["status"] == "passed":
            return self.execute_complete(context, now)
        seen = f"firing now: {', '.join(now['firing'])}" if now["firing"] else "Prometheus did not answer"
        self.log.info("%s; waiting at most %s for no alert of %s to fire", seen, clear.wait, clear.alerts)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=clear.wait + DEFERRAL_GRACE)
        return None

    def window_failed(self, run: ReleaseRun, reason: str, event: dict[str, Any]) -> None:
        release_notifier(run).say(self.window_name, f"{run.spec.service} {run.request.version}: {reason}")
        raise AirflowFailException(reason)
