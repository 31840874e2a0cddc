"""Operators that change what serves traffic: deploy green, shift weights, decide, roll back, decommission blue."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.sdk.exceptions import AirflowFailException

from operators.base import ReleaseOperator
from operators.notifications import release_notifier
from operators.runtime import ReleaseRun, kubernetes_connection_extras
from operators.states import FAILED_STATES, task_states
from operators.triggers import RolloutTrigger
from sap_llm_release.analysis.readiness import green_ready_to_shift
from sap_llm_release.evidence import Verdict
from sap_llm_release.gates import phase_results
from sap_llm_release.routers.base import ALL_BLUE, RouterError, Weights
from sap_llm_release.spec import PHASES_BEFORE_TRAFFIC, Gate
from sap_llm_release.targets import STACK_DIR_ENV


class DeployGreenOperator(ReleaseOperator):
    """Run the requested version as green (no traffic yet), then wait in the triggerer (no worker slot held) until
    its rollout is ready, for at most ``ready_timeout``."""

    ui_color = "#d6eaf8"

    def __init__(self, *, ready_timeout: timedelta = timedelta(minutes=30), poll_interval_s: float = 2.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ready_timeout = ready_timeout
        self.poll_interval_s = poll_interval_s

    def execute(self, context: Any) -> None:
        run = ReleaseRun(self.spec_path, context)
        changed = run.target.deployer.deploy("green", run.request.version)
        run.event("green_deployed", f"{run.request.version} {'started' if changed else 'already running'} as green")
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

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        run = ReleaseRun(self.spec_path, context)
        if not event.get("ready"):
            run.event("green_not_ready", event.get("seen", ""))
            raise AirflowFailException(f"green {run.request.version} did not become ready: {event.get('seen')}")
        run.event("green_ready", event["seen"])
        return run.request.version


class ShiftTrafficOperator(ReleaseOperator):
    """Send ``weight`` percent to green, after proving from the ledger that every earlier gate let it through and
    seeing green answer ready right before the change."""

    ui_color = "#fdebd0"
    READY_PROBE_TIMEOUT_S = 10.0  # how long green may take to answer ready before a shift

    def __init__(self, *, weight: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = weight

    def execute(self, context: Any) -> dict[str, int]:
        run = ReleaseRun(self.spec_path, context)
        gates = [gate for gate in run.spec.gates if gate.phase in PHASES_BEFORE_TRAFFIC]
        recorded = run.ledger.gate_verdicts(run.release_id)
        self._require_gates_proven(gates, recorded)
        notifier = release_notifier(run)
        if self.weight == run.spec.traffic.steps[0].weight:
            notifier.say("phases_before_traffic", "every gate before traffic let the release through:\n"
                         + "\n".join(phase_results(gates, recorded)))
        router = run.target.router
        before = router.get_weights()
        wanted = Weights.green_percent(self.weight)
        self._require_green_ready(run)
        try:
            router.set_weights(wanted)
        except RouterError as exc:  # not applied: the ledger holds why and the split the live router serves
            run.event("traffic_not_applied", str(exc))
            raise
        live = router.get_weights()
        if live != wanted:
            raise RouterError(f"{router.describe()} routes {live} after setting {wanted}")
        run.ledger.record_traffic_change(
            run.release_id,
            reason=f"step {self.weight}%",
            before=before.as_tuple(),
            after=live.as_tuple(),
            router=router.describe(),
            writer=run.writer,
        )
        self.log.info("traffic %s -> %s", before, live)
        notifier.say(f"traffic_{self.weight:03d}",
                     f"traffic: {live.green} % on green {run.request.version} (was {before.green} %)")
        return {"blue": live.blue, "green": live.green}

    def _require_green_ready(self, run: ReleaseRun) -> None:
        """Green must answer ready right before its share grows; otherwise the shift fails (the release rolls
        back) and the refusal is in the ledger."""
        ready, seen = green_ready_to_shift(run.target.deployer, run.green_ready_url(), self.READY_PROBE_TIMEOUT_S)
        if not ready:
            run.event("green_not_ready_before_shift", f"step {self.weight}%: {seen}")
            raise AirflowFailException(f"refusing to shift {self.weight}% to green: it is not ready ({seen})")

    @staticmethod
    def _require_gates_proven(gates: list[Gate], recorded: dict[str, dict[str, Any]]) -> None:
        unproven = [
            gate.name
            for gate in gates
            if gate.name not in recorded or not Verdict(recorded[gate.name]["verdict"]).lets_release_continue
        ]
        if unproven:
            raise AirflowFailException(
                f"refusing to shift traffic: no passing record in the ledger for gates {', '.join(unproven)}"
            )


class ReleaseDecisionOperator(BaseBranchOperator):
    """Promote only when every traffic step and post-deployment task succeeded; roll back otherwise once traffic
    was touched (the first shift ran, or the live router sends anything to green); neither when nothing was."""

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
        started = states.get(self.start_task) == "success"
        shifted = states.get(self.first_shift) in ("success", "failed")
        if not (shifted or started and self._green_has_traffic(context)):
            self.log.info("no traffic was changed: nothing to promote or roll back")
            return []
        watched = [task.task_id for task in self.dag.tasks if task.task_id.split(".")[0] in self.watched_groups]
        unproven = sorted(task for task in watched if states.get(task) != "success")
        if unproven:
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


class RollbackOperator(ReleaseOperator):
    """All traffic back to blue, green taken out, blue verified healthy through the router; all recorded."""

    ui_color = "#fadbd8"

    def execute(self, context: Any) -> dict[str, Any]:
        """Page on-call as the rollback starts; resolve the page once blue is verified, page again if it fails.
        Notifications never delay or fail the rollback itself (they retry briefly and only record failures)."""
        run = ReleaseRun(self.spec_path, context)
        notifier = release_notifier(run)
        cause = self._cause(run, context)
        notifier.page("rolled_back", f"{run.spec.service} {run.request.version} rolling back: {cause}")
        try:
            result = self._roll_back(run, cause)
        except Exception as exc:
            notifier.page("rollback_failed", f"{run.spec.service} rollback FAILED: {exc}")
            notifier.say("rollback_failed", f"rollback failed: {exc}")
            raise
        notifier.resolve_page("rollback_verified", f"rolled back; {result['detail']}")
        notifier.say("rolled_back", f"rolled back to blue ({result['detail']}); cause: {cause}")
        return result

    def _roll_back(self, run: ReleaseRun, cause: str) -> dict[str, Any]:
        started = datetime.now(timezone.utc).isoformat()
        target = run.target
        before = target.router.get_weights()
        try:
            target.router.set_weights(ALL_BLUE)
        except RouterError as exc:  # not applied: the ledger holds why and the split the live router serves
            run.event("rollback_not_applied", str(exc))
            raise
        after = target.router.get_weights()
        run.ledger.record_traffic_change(
            run.release_id,
            reason="rollback",
            before=before.as_tuple(),
            after=after.as_tuple(),
            router=target.router.describe(),
            writer=run.writer,
        )
        green_removed = target.deployer.remove("green") or target.deployer.running_version("green") is None
        blue_healthy, detail = self._verify_blue(run)
        run.ledger.record_rollback(
            run.release_id,
            cause=cause,
            blue_weight_after=after.blue,
            green_removed=green_removed,
            blue_healthy=blue_healthy,
            detail=detail,
            started_at=started,
            writer=run.writer,
        )
        if after != ALL_BLUE or not blue_healthy:
            raise AirflowFailException(f"rollback incomplete: router {after}, blue healthy {blue_healthy}: {detail}")
        self.log.info("rolled back to blue (%s); cause: %s", detail, cause)
        return {"cause": cause, "detail": detail}

    @staticmethod
    def _verify_blue(run: ReleaseRun, probes: int = 10, settle_s: float = 30.0) -> tuple[bool, str]:
        """Blue ready, and every one of ``probes`` requests through the router answered by blue's slot. A router
        object (an HTTPRoute, a canary Ingress) is applied by its controller a moment after it is written, so rounds
        of probes are repeated for up to ``settle_s``."""
        ready, detail = run.target.deployer.wait_ready("blue", 60)
        if not ready:
            return False, f"blue not ready: {detail}"
        url, blue = run.target.url("router") + "/health", run.target.slots["blue"]
        started = time.monotonic()
        with httpx.Client(timeout=5) as client:
            while True:
                served_by = []
                for _ in range(probes):
                    try:
                        served_by.append(client.get(url).json().get("colour"))
                    except (httpx.HTTPError, ValueError, AttributeError) as exc:
                        served_by.append(f"error {exc!r}")
                waited = time.monotonic() - started
                if served_by.count(blue) == probes or waited >= settle_s:
                    break
                time.sleep(1)
        healthy = served_by.count(blue) == probes
        return healthy, (f"{served_by.count(blue)}/{probes} requests through the router answered by blue "
                         f"(slot {blue}) after {waited:.1f}s")

    @staticmethod
    def _cause(run: ReleaseRun, context: Any) -> str:
        failed_windows = run.ledger.slo_windows(run.release_id, verdict="failed")
        if failed_windows:
            return f"{failed_windows[-1]['step']}: {failed_windows[-1]['reason']}"
        failed = sorted(task for task, state in task_states(context).items() if state in FAILED_STATES)
        return "failed: " + ", ".join(failed)


class DecommissionBlueOperator(ReleaseOperator):
    """Take blue out once green carries everything."""

    ui_color = "#d6eaf8"

    def execute(self, context: Any) -> bool:
        run = ReleaseRun(self.spec_path, context)
        removed = run.target.deployer.remove("blue")
        run.event("blue_decommissioned", "blue removed" if removed else "blue was not running")
        return removed
