"""Operators that change what serves traffic: deploy green, shift weights, decide, roll back, decommission blue."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from operators.base import ReleaseOperator
from operators.notifications import release_notifier
from operators.runtime import ReleaseRun, kubernetes_connection_extras
from operators.sensors import SLOWindowSensor
from operators.states import task_states
from operators.triggers import RolloutTrigger
from sap_llm_release.gates import phase_results
from sap_llm_release.notify.alertmanager import ROLLBACK_ALERT, post_alerts, rollback_alert
from sap_llm_release.rollout import (
    Decision,
    RollbackIncomplete,
    RolloutRefused,
    decide,
    require_gates_proven,
    require_windows_passed,
)
from sap_llm_release.routers.base import RouterError
from sap_llm_release.spec import PHASES_BEFORE_TRAFFIC
from sap_llm_release.targets import STACK_DIR_ENV, slots_for

# the rollback task's retries, ROLLBACK_RETRY_DELAY apart (RollbackOperator)
ROLLBACK_RETRIES = 3
ROLLBACK_RETRY_DELAY = timedelta(seconds=5)
# how long the rollback's alert inhibits green's: the longest rate window of the alerts it covers (5 minutes) twice
ROLLBACK_HOLD = timedelta(minutes=10)

class DeployGreenOperator(ReleaseOperator):
    """Run the requested version as green (no traffic yet), then wait in the triggerer (no worker slot held) until
    its rollout is ready, for at most ``ready_timeout``."""

    ui_color = "#d6eaf8"
    READY_BEFORE_DEFER_S = 5.0

    def __init__(self, *, ready_timeout: timedelta = timedelta(minutes=30), poll_interval_s: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready_timeout = ready_timeout
        self.poll_interval_s = poll_interval_s

    def execute(self, context: Any) -> str | None:
        """Deploy, and go on at once where green is ready within ``READY_BEFORE_DEFER_S`` (a slot that starts in a
        second or two): deferred, a trigger that fires within a second is what Airflow 3.3's scheduler can fail the
        resumed task for, on the stale executor event of its own defer (apache/airflow#72716; met here beside fifty
        busy runs, both tries). Else wait deferred."""
        run = ReleaseRun(self.spec_path, context)
        changed = run.target.deployer.deploy("green", run.request.version)
        run.event("green_deployed", f"{run.request.version} {'started' if changed else 'already running'} as green")
        try:
            ready, seen = run.target.deployer.wait_ready("green", self.READY_BEFORE_DEFER_S)
        except Exception as exc:  # noqa: BLE001 - a platform not answering yet is the trigger's to wait out
            ready, seen = False, f"{type(exc).__name__}: {exc}"
        if ready:
            return self.execute_complete(context, {"ready": True, "seen": seen})
        self.log.info("green not ready within %.0f s (%s); waiting deferred", self.READY_BEFORE_DEFER_S, seen)
        deadline = datetime.now(timezone.utc) + self.ready_timeout
        where = {"target": run.target.name, "colour": "green", "deadline": deadline.isoformat(),
                 "interval_s": self.poll_interval_s, "blue_slot": run.blue_slot}
        if run.target.pods is not None:
            settings = run.target.pods
            where |= {"namespace": settings.namespace, "connection_extras": kubernetes_connection_extras(),
                      "deployment": settings.deployment_name(run.target.slots["green"])}
        else:
            where |= {"stack_dir": os.environ.get(STACK_DIR_ENV, "")}
        self.defer(trigger=RolloutTrigger(**where), method_name="execute_complete",
                   timeout=self.ready_timeout + timedelta(minutes=5))
        return None

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        run = ReleaseRun(self.spec_path, context)
        if not event.get("ready"):
            run.event("green_not_ready", event.get("seen", ""))
            raise AirflowFailException(f"green {run.request.version} did not become ready: {event.get('seen')}")
        run.event("green_ready", event["seen"])
        return run.request.version


class ShiftTrafficOperator(SLOWindowSensor):
    """Send ``weight`` percent to green, after proving from the ledger that every earlier gate let it through and
    seeing green answer ready right before the change (:meth:`Rollout.shift`); then watch the step's window from
    that moment, deferred, in the same task: no scheduler between a traffic change and its watch (on a busy
    scheduler that gap was seconds of green's errors nobody watched)."""

    ui_color = "#fdebd0"
    READY_PROBE_TIMEOUT_S = 10.0  # how long green may take to answer ready before a shift

    def execute(self, context: Any) -> None:
        self.shift(ReleaseRun(self.spec_path, context))
        self.watch_window(context)

    def shift(self, run: ReleaseRun) -> None:
        gates = [gate for gate in run.spec.gates if gate.phase in PHASES_BEFORE_TRAFFIC]
        recorded = run.ledger.gate_verdicts(run.release_id)
        notifier = release_notifier(run)
        try:
            require_gates_proven(gates, recorded)
            if self.weight == run.spec.traffic.steps[0].weight:
                if run.spec.analysis.clear_before_traffic:
                    require_windows_passed(["clear_before_shift"], run.ledger.slo_windows(run.release_id))
                notifier.say("phases_before_traffic", "every gate before traffic let the release through:\n"
                             + "\n".join(phase_results(gates, recorded)))
            shift = run.rollout.shift(self.weight, run.green_ready_url(), self.READY_PROBE_TIMEOUT_S)
        except (RolloutRefused, RouterError) as exc:  # refused, or a write the router did not apply: not retried
            raise AirflowFailException(str(exc)) from None
        self.log.info("traffic %s -> %s", shift.before, shift.live)
        notifier.say(f"traffic_{self.weight:03d}",
                     f"traffic: {shift.live.green} % on green {run.request.version} (was {shift.before.green} %)")


class ReleaseDecisionOperator(BaseBranchOperator):
    """Promote only when every traffic step and post-deployment task succeeded; roll back otherwise once traffic
    was touched (the first shift ran, or the live router sends anything to green); neither when nothing was
    (:func:`sap_llm_release.rollout.decide`)."""

    ui_color = "#f5eef8"

    def __init__(
        self,
        *,
        spec_path: str,
        start_task: str,
        first_shift: str,
        watched_groups: tuple[str, ...],
        promote_task: str,
        rollback_task: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(trigger_rule="all_done", **kwargs)
        self.spec_path = spec_path
        self.start_task = start_task
        self.first_shift = first_shift
        self.watched_groups = watched_groups
        self.promote_task = promote_task
        self.rollback_task = rollback_task

    def choose_branch(self, context: Any) -> str | list[str]:
        states = task_states(context)
        watched = [task.task_id for task in self.dag.tasks if task.task_id.split(".")[0] in self.watched_groups]
        decision = decide(states, start_task=self.start_task, first_shift=self.first_shift, watched=watched,
                          green_has_traffic=lambda: self._green_has_traffic(context))
        if decision is Decision.NEITHER:
            self.log.info("no traffic was changed: nothing to promote or roll back")
            return []
        if decision is Decision.ROLL_BACK:
            unproven = sorted(task for task in watched if states.get(task) != "success")
            self.log.warning("rolling back; not succeeded: %s", ", ".join(f"{t} ({states.get(t)})" for t in unproven))
            return self.rollback_task
        return self.promote_task

    def _green_has_traffic(self, context: Any) -> bool:
        """The live router's answer; a router that cannot be read counts as touched, so rollback gets its turn."""
        try:
            return ReleaseRun(self.spec_path, context).target.router.get_weights().green > 0
        except Exception as exc:  # noqa: BLE001 - any failure to read means the split is unknown
            self.log.warning("cannot read the router (%s); treating traffic as touched", exc)
            return True


class CountLostRequestsOperator(ReleaseOperator):
    """Rollback step 3 (:meth:`Rollout.count_lost_requests`): the requests the router lost while the rollback
    switched traffic, from its access log; recorded, and a loss beyond the spec's tolerance (or nothing counted)
    is said in the release's thread and fails. Runs whatever blue's recovery window found (skipped with the rollback,
    or when no rollback was recorded)."""

    ui_color = "#fadbd8"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(trigger_rule="none_skipped", **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        run = ReleaseRun(self.spec_path, context)
        counted = run.rollout.count_lost_requests(run.spec.traffic.recovery)
        if counted is None:
            raise AirflowSkipException("no rollback was recorded: no switch to count")
        passed, detail = counted
        if not passed:
            release_notifier(run).say("requests_lost", f"rollback: {detail}")
            raise AirflowFailException(detail)
        self.log.info("%s", detail)
        return {"detail": detail}


class RollbackOperator(ReleaseOperator):
    """All traffic back to blue, green taken out, blue verified healthy through the router; all recorded
    (:meth:`Rollout.roll_back`). Every step of it can be run again, so the task is retried when its worker is lost
    mid-rollback (the scheduler fails a try whose heartbeat stopped) or an unexpected error stops it
    (``ROLLBACK_RETRIES``, given by the DAG: a DAG's ``default_args`` would override an operator's own); a router that
    refuses the write or a blue that does not serve everything fails it at once, loudly: a retry would not change
    either, a person must."""

    ui_color = "#fadbd8"

    def execute(self, context: Any) -> dict[str, Any]:
        """Page on-call as the rollback starts; resolve the page once blue is verified, page again if it fails.
        Notifications never delay or fail the rollback itself (they retry briefly and only record failures)."""
        run = ReleaseRun(self.spec_path, context)
        notifier = release_notifier(run)
        # the tasks that failed themselves: the ones below them (upstream_failed) say nothing of the cause
        failed = [task for task, state in task_states(context).items() if state == "failed"]
        cause = run.rollout.rollback_cause(failed)
        notifier.page("rolled_back", f"{run.spec.service} {run.request.version} rolling back: {cause}")
        self.announce_to_alertmanager(run)
        try:
            detail = run.rollout.roll_back(cause)
        except Exception as exc:
            notifier.page("rollback_failed", f"{run.spec.service} rollback FAILED: {exc}")
            notifier.say("rollback_failed", f"rollback failed: {exc}")
            if isinstance(exc, (RollbackIncomplete, RouterError)):
                raise AirflowFailException(str(exc)) from None
            raise
        notifier.resolve_page("rollback_verified", f"rolled back; {detail}")
        notifier.say("rolled_back", f"rolled back to blue ({detail}); cause: {cause}")
        self.log.info("rolled back to blue (%s); cause: %s", detail, cause)
        return {"cause": cause, "detail": detail}


    def announce_to_alertmanager(self, run: ReleaseRun) -> None:
        """Tell every Alertmanager Prometheus sends to that green is rolling back (its alerts are this page's);
        recorded, and never in the rollback's way: a failure is logged and recorded, nothing more."""
        from sap_llm_release.analysis.prometheus import PrometheusProvider

        colour = slots_for(run.blue_slot)["green"]
        alert = rollback_alert(run.spec.service, run.release_id, colour, datetime.now(timezone.utc), ROLLBACK_HOLD)
        try:
            outcomes = post_alerts(PrometheusProvider(run.prometheus).alertmanagers(), [alert])
        except Exception as exc:  # noqa: BLE001 - no Prometheus, no Alertmanager: the rollback goes on
            outcomes = {"prometheus": f"Alertmanagers not found: {type(exc).__name__}: {exc}"}
        for url, outcome in (outcomes or {"prometheus": "sends to no Alertmanager"}).items():
            run.ledger.record_notification(run.release_id, channel="alertmanager", kind=ROLLBACK_ALERT,
                                           dedup_key=url, status="sent" if outcome == "sent" else "failed",
                                           detail=outcome[:500], writer=run.writer)
            self.log.log(logging.INFO if outcome == "sent" else logging.WARNING, "%s to %s: %s", ROLLBACK_ALERT,
                         url, outcome)


class DecommissionBlueOperator(ReleaseOperator):
    """Take blue out once green carries everything."""

    ui_color = "#d6eaf8"

    def execute(self, context: Any) -> bool:
        return ReleaseRun(self.spec_path, context).rollout.decommission_blue()
