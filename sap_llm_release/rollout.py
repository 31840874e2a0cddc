"""The release procedure itself, over a target's router and deployer and the ledger: shift traffic and verify it,
decide between promotion and rollback, roll back, and name the outcome. Operators gather Airflow's context and call
these; a trigger that rolls back without the scheduler calls the same functions.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from sap_llm_release.analysis.readiness import green_ready_to_shift
from sap_llm_release.evidence import Verdict
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.polling import poll_until
from sap_llm_release.routers.access_logs import count_lost
from sap_llm_release.routers.base import ALL_BLUE, RouterError, Weights
from sap_llm_release.service_logs.base import LogsUnavailable
from sap_llm_release.spec import Gate, RollbackRecovery
from sap_llm_release.targets import Target
from sap_llm_release.timestamps import recorded_time
from sap_llm_release.tls import default_tls

FAILED_STATES = frozenset({"failed", "upstream_failed"})


class RolloutRefused(RuntimeError):
    """A step the procedure will not take (a gate not proven, green not ready); nothing was changed."""


class RollbackIncomplete(RuntimeError):
    """The rollback ran but blue does not carry all traffic healthily; the ledger holds what was seen."""


BREACH_SWITCH = "breach"  # a traffic change's reason: all traffic to blue where the breach was decided


class Decision(enum.Enum):
    PROMOTE = "promote"
    ROLL_BACK = "roll_back"
    NEITHER = "neither"  # nothing was touched: there is nothing to promote or roll back


@dataclass(frozen=True)
class Shift:
    before: Weights
    live: Weights


def require_gates_proven(gates: list[Gate], recorded: Mapping[str, Mapping[str, Any]]) -> None:
    """Every gate has a record in the ledger whose verdict lets the release continue."""
    unproven = [gate.name for gate in gates
                if gate.name not in recorded or not Verdict(recorded[gate.name]["verdict"]).lets_release_continue]
    if unproven:
        raise RolloutRefused(f"refusing to shift traffic: no passing record in the ledger for gates "
                             f"{', '.join(unproven)}")


def require_windows_passed(names: Collection[str], windows: list[Mapping[str, Any]]) -> None:
    """The latest window recorded under each of ``names`` (``windows`` in recorded order) passed."""
    latest = {window["step"]: window["verdict"] for window in windows}
    unproven = [name for name in names if latest.get(name) != "passed"]
    if unproven:
        raise RolloutRefused(f"refusing to shift traffic: no passing record in the ledger for windows "
                             f"{', '.join(unproven)}")


def decide(states: Mapping[str, str | None], *, start_task: str, first_shift: str, watched: Collection[str],
           green_has_traffic: Callable[[], bool]) -> Decision:
    """Promote only when every watched task (traffic steps, post-deployment) succeeded; roll back whenever traffic
    may have moved (the first shift ran or failed, or the live router sends green anything); else neither."""
    started = states.get(start_task) == "success"
    shifted = states.get(first_shift) in ("success", "failed")
    if not (shifted or started and green_has_traffic()):
        return Decision.NEITHER
    if any(states.get(task) != "success" for task in watched):
        return Decision.ROLL_BACK
    return Decision.PROMOTE


def release_outcome(states: Mapping[str, str | None], *, promoted_task: str, rollback_task: str,
                    release_recorded: bool, recorded: Mapping[str, Mapping[str, Any]], version: str,
                    environment: str, after_rollback: Collection[str] = (),
                    planned_task: str | None = None) -> tuple[str | None, str]:
    """``(outcome, message)``: promoted, rolled_back, rollback_failed or failed; planned for a dry run that
    recorded its plan (not a release outcome: the audits do not count it); ``(None, "")`` for a release that never
    started (nothing recorded). A rollback's message names the checks after it (``after_rollback``: blue's
    recovery, the requests lost) that failed."""
    if states.get(promoted_task) == "success":
        return "promoted", f"{version} serves 100% of {environment}; blue decommissioned"
    if planned_task and states.get(planned_task) == "success":
        verdicts = Counter(row["verdict"] for row in recorded.values())
        return "planned", (f"dry run of {version} to {environment}: {len(recorded)} gates recorded ("
                           + ", ".join(f"{count} {verdict}" for verdict, count in sorted(verdicts.items()))
                           + "); nothing deployed, shifted, asked or paged")
    after = [task for task in after_rollback if states.get(task) in FAILED_STATES]
    failed = sorted(task for task, state in states.items() if state == "failed" and task not in after)
    if states.get(rollback_task) == "success":
        unproven = f"; after the rollback, failed: {', '.join(after)}" if after else ""
        return "rolled_back", f"rolled back to blue after failure of {', '.join(failed)}{unproven}"
    if states.get(rollback_task) in FAILED_STATES:
        return "rollback_failed", f"rollback failed; failed tasks: {', '.join(failed)}"
    if not release_recorded:
        return None, ""
    failed_gates = [f"gate {row['gate']} failed: measured {_measured(row)}, threshold {row['threshold']} "
                    f"({row['detail']})" for row in recorded.values() if row["verdict"] == Verdict.FAILED.value]
    return "failed", "; ".join(failed_gates) or f"failed tasks: {', '.join(failed) or 'none'}"


def _measured(row: Mapping[str, Any]) -> Any:
    return row["measured_value"] if row["measured_value"] is not None else row["measured_text"]


@dataclass
class Rollout:
    """One release's traffic on one target: each change verified on the live router and recorded."""

    release_id: str
    target: Target
    ledger: Ledger
    writer: Writer

    def event(self, name: str, detail: str) -> None:
        self.ledger.record_event(self.release_id, name, detail, self.writer)

    def shift(self, weight: int, ready_url: str, ready_timeout_s: float) -> Shift:
        """Send ``weight`` % to green once green answers ready (its platform and its own endpoint), and count the
        change only when the live router serves it; a step run again finds it served and recorded, and writes
        nothing. Never after a failed window or a breach switch of this release (a shift's task run again after its
        window's trigger took traffic off green must not give it back)."""
        if failed := self.ledger.slo_windows(self.release_id, verdict="failed"):
            raise RolloutRefused(f"refusing to shift {weight}% to green: window {failed[-1]['step']} failed: "
                                 f"{failed[-1]['reason']}")
        latest = self.ledger.latest_traffic_change(self.release_id)
        if latest is not None and latest["reason"] == BREACH_SWITCH:
            raise RolloutRefused(f"refusing to shift {weight}% to green: its traffic was taken off at a breach "
                                 f"({latest['changed_at']})")
        router = self.target.router
        before = router.get_weights()
        ready, seen = green_ready_to_shift(self.target.deployer, ready_url, ready_timeout_s)
        if not ready:
            self.event("green_not_ready_before_shift", f"step {weight}%: {seen}")
            raise RolloutRefused(f"refusing to shift {weight}% to green: it is not ready ({seen})")
        wanted, reason = Weights.green_percent(weight), f"step {weight}%"
        if before == wanted and latest is not None and latest["reason"] == reason:
            return Shift(before, before)  # the step run again: the live router serves it, and it is recorded
        live = self._route(wanted, "traffic_not_applied")
        self.ledger.record_traffic_change(self.release_id, reason=reason, before=before.as_tuple(),
                                          after=live.as_tuple(), router=router.describe(), writer=self.writer)
        return Shift(before, live)

    def _route(self, wanted: Weights, not_applied: str) -> Weights:
        """Write ``wanted`` and read the live split back; a change the router did not apply is recorded."""
        router = self.target.router
        try:
            router.set_weights(wanted)
        except RouterError as exc:  # not applied: the ledger holds why and the split the live router serves
            self.event(not_applied, str(exc))
            raise
        live = router.get_weights()
        if live != wanted:
            raise RouterError(f"{router.describe()} routes {live} after setting {wanted}")
        return live

    def take_traffic_off_green(self, cause: str, environment: str) -> tuple[bool, str]:
        """A breach seen where it was decided (the trigger watching the window): all traffic to blue at once,
        recorded as the ``breach_decided`` event (its time: the decision's) and a ``breach`` traffic change (the
        write's), before the DAG's rollback task, which finds the router on blue and
        finishes the job. Safe to repeat (a router on blue is left alone); never taken for a release that no longer
        holds ``environment`` or has a rollback recorded (a trigger fired late must not touch a later release's
        traffic), nor on a router that cannot be read or written: the rollback task then does it. Returns whether
        traffic moved and what was seen."""
        holder = self.ledger.environment_holder(environment)
        if holder is None or holder["release_id"] != self.release_id:
            return False, f"not taken: the release no longer holds {environment}"
        if self.ledger.rollbacks(self.release_id):
            return False, "not taken: a rollback is recorded already"
        router = self.target.router
        try:
            before = router.get_weights()
            if before == ALL_BLUE:
                return False, f"{router.describe()} sends green nothing already"
            self.event("breach_decided", cause)
            live = self._route(ALL_BLUE, "traffic_off_green_not_applied")
        except RouterError as exc:
            return False, f"not taken, left to the rollback: {exc}"
        self.ledger.record_traffic_change(self.release_id, reason=BREACH_SWITCH, before=before.as_tuple(),
                                          after=live.as_tuple(), router=router.describe(), writer=self.writer)
        return True, f"{before} -> {live}"

    def rollback_cause(self, failed_tasks: list[str]) -> str:
        """The last failed SLO window, else the failed tasks."""
        failed_windows = self.ledger.slo_windows(self.release_id, verdict="failed")
        if failed_windows:
            return f"{failed_windows[-1]['step']}: {failed_windows[-1]['reason']}"
        return "failed: " + ", ".join(sorted(failed_tasks))

    def roll_back(self, cause: str) -> str:
        """All traffic to blue, green taken out, blue verified healthy through the router; all recorded. Returns
        what the verification saw; raises :class:`RollbackIncomplete` when blue does not serve everything. Safe to
        run again after a try that died part-way: each step finds its work done or does it, and each try records
        its verification."""
        started = datetime.now(timezone.utc).isoformat()
        router, deployer = self.target.router, self.target.deployer
        before = router.get_weights()
        try:
            router.set_weights(ALL_BLUE)
        except RouterError as exc:
            self.event("rollback_not_applied", str(exc))
            raise
        after = router.get_weights()
        if after != before:  # a retried rollback finds blue at 100 % already: nothing changed, nothing to record
            self.ledger.record_traffic_change(self.release_id, reason="rollback", before=before.as_tuple(),
                                              after=after.as_tuple(), router=router.describe(), writer=self.writer)
        green_removed = deployer.remove("green") or deployer.running_version("green") is None
        blue_healthy, detail = self.verify_blue()
        self.ledger.record_rollback(self.release_id, cause=cause, blue_weight_after=after.blue,
                                    green_removed=green_removed, blue_healthy=blue_healthy, detail=detail,
                                    started_at=started, writer=self.writer)
        if after != ALL_BLUE or not blue_healthy:
            raise RollbackIncomplete(f"rollback incomplete: router {after}, blue healthy {blue_healthy}: {detail}")
        return detail

    def count_lost_requests(self, recovery: RollbackRecovery) -> tuple[bool, str] | None:
        """Rollback step 3: the requests the router answered from the rollback's start (its first try's, when a
        lost worker made it retry) until ``recovery.switch_grace`` after blue was verified (waited for), counted from
        the target's access log and recorded; ``(passed, what was seen)``, or None when no rollback was recorded. A
        log that cannot be read, or a switch no request went through, fails: nothing shows that none was lost."""
        rollbacks = self.ledger.rollbacks(self.release_id)
        if not rollbacks:
            return None
        start = min(recorded_time(rollback["started_at"]) for rollback in rollbacks)
        switch = self.ledger.latest_traffic_change(self.release_id)
        if switch is not None and switch["reason"] in ("rollback", BREACH_SWITCH):  # the switch before the try
            start = min(start, recorded_time(switch["changed_at"]))
        verified = recorded_time(rollbacks[-1]["completed_at"])
        end = verified + recovery.switch_grace
        time.sleep(max(0.0, (end - datetime.now(timezone.utc)).total_seconds()))
        log, requests, lost = self.target.access_log, None, None
        if log is None:
            source, passed = "none", False
            detail = (f"the {self.target.name} target names no router access log (on a cluster: the settings' "
                      "router_logs): nothing shows that no request was lost")
        else:
            source = log.describe()
            try:
                loss = count_lost(log, start, end)
            except LogsUnavailable as exc:
                passed, detail = False, f"the router's access log could not be read: {exc}"
            else:
                requests, lost, passed, detail = loss.requests, len(loss.lost), loss.within(
                    recovery.max_lost_requests), loss.describe()
        self.ledger.record_lost_requests(self.release_id, window=(start, end), source=source, requests=requests,
                                         lost=lost, max_lost=recovery.max_lost_requests, passed=passed,
                                         detail=detail, writer=self.writer)
        return passed, detail

    def verify_blue(self, probes: int = 10, settle_s: float = 30.0) -> tuple[bool, str]:
        """Blue ready, and every one of ``probes`` requests through the router answered by blue's slot. A router
        object (an HTTPRoute, a canary Ingress) is applied by its controller a moment after it is written, so rounds
        of probes are repeated every second for up to ``settle_s``."""
        ready, detail = self.target.deployer.wait_ready("blue", 60)
        if not ready:
            return False, f"blue not ready: {detail}"
        url, blue = self.target.url("router") + "/health", self.target.slots["blue"]
        started = time.monotonic()
        with httpx.Client(timeout=5, verify=default_tls()) as client:
            served_by = poll_until(lambda: _answered_by(client, url, probes),
                                   lambda answers: answers.count(blue) == probes, timeout_s=settle_s, interval_s=1.0)
        healthy = served_by.count(blue) == probes
        return healthy, (f"{served_by.count(blue)}/{probes} requests through the router answered by blue "
                         f"(slot {blue}) after {time.monotonic() - started:.1f}s")

    def decommission_blue(self) -> bool:
        removed = self.target.deployer.remove("blue")
        self.event("blue_decommissioned", "blue removed" if removed else "blue was not running")
        return removed


def _answered_by(client: httpx.Client, url: str, probes: int) -> list[str]:
    """Which slot answered each of ``probes`` requests (or the error)."""
    answers = []
    for _ in range(probes):
        try:
            answers.append(str(client.get(url).json().get("colour")))
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            answers.append(f"error {exc!r}")
    return answers
