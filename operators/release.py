"""Operators that open and close a release and check its gates."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator

from operators.base import ReleaseOperator
from operators.notifications import release_notifier, release_notifier_for, run_url
from operators.runtime import ReleaseRun, kubernetes_api_client
from operators.states import task_states
from sap_llm_release.gates import GateFailed, evaluate_gate, phase_results
from sap_llm_release.ledger import EnvironmentLocked
from sap_llm_release.plan import release_plan
from sap_llm_release.request import RequestError, validate_requester
from sap_llm_release.rollout import release_outcome
from sap_llm_release.spec import Phase
from sap_llm_release.targets import TargetError, build_target, live_blue_slot


class StartReleaseOperator(ReleaseOperator):
    """Validate the request, record the release and take the environment (one release per environment)."""

    ui_color = "#d5f5e3"

    def execute(self, context: Any) -> str:
        run = ReleaseRun(self.spec_path, context)
        request = run.request
        if not run.triggered_by:
            raise RequestError(
                "invalid release parameters: requested_by: needed when no Airflow user triggered the run"
            )
        validate_requester(run.triggered_by)
        target = build_target(run.profile.target, kubernetes_api=kubernetes_api_client)
        try:
            target.refuse_undeployable(request.version)
        except TargetError as exc:
            raise RequestError(f"invalid release parameters: {exc}") from None
        blue_slot = live_blue_slot(target.router)
        run.ledger.migrate()
        run.ledger.record_release(
            run.release_id,
            service=run.spec.service,
            environment=request.environment,
            version=request.version,
            profile=request.profile,
            triggered_by=run.triggered_by,
            spec_digest=run.spec.digest,
            blue_slot=blue_slot,
            writer=run.writer,
        )
        if not request.dry_run:  # a dry run changes nothing: it holds no environment
            try:
                run.ledger.acquire_environment(request.environment, run.release_id)
            except EnvironmentLocked as exc:
                run.event("refused", str(exc))
                raise
        requested = f", requested by {request.requested_by}" if request.requested_by else ""
        dry_run = "; a dry run: nothing is deployed, shifted, asked or paged" if request.dry_run else ""
        run.event("started", f"{run.spec.service} {request.version} to {request.environment} ({request.profile})"
                             f"{requested}{dry_run}")
        notifier = release_notifier_for(run.ledger, run.release_id, run.writer)
        if notifier.slack is None or notifier.pager is None:
            off = [name for name, on in (("Slack", notifier.slack), ("PagerDuty", notifier.pager)) if on is None]
            run.event("notifications_off", f"no connection for {', '.join(off)}: those notifications are not sent")
        if not request.dry_run:  # a dry run's one message is its plan
            notifier.started(run.spec.service, request.version, request.environment, run.triggered_by,
                             run_url(context))
        self.log.info("release %s started by %s", run.release_id, run.triggered_by)
        return run.release_id


class DryRunOrDeployOperator(BaseBranchOperator):
    """After the pre-traffic gates: a dry run goes to its plan, a release to its deploy."""

    ui_color = "#f5eef8"

    def __init__(self, *, spec_path: str, plan_task: str, deploy_tasks: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
        self.plan_task = plan_task
        self.deploy_tasks = deploy_tasks

    def choose_branch(self, context: Any) -> str | list[str]:
        return self.plan_task if ReleaseRun(self.spec_path, context).request.dry_run else self.deploy_tasks


class DryRunPlanOperator(ReleaseOperator):
    """A dry run's plan (:func:`sap_llm_release.plan.release_plan`): recorded as the release's ``dry_run_plan``
    event, logged, and posted to Slack, the one message a dry run sends."""

    ui_color = "#d6eaf8"

    def execute(self, context: Any) -> list[str]:
        run = ReleaseRun(self.spec_path, context)
        plan = release_plan(run.spec, run.request, run.blue_slot)
        text = "\n".join(f"{index}. {line}" for index, line in enumerate(plan, 1))
        run.event("dry_run_plan", text)
        for line in text.splitlines():
            self.log.info("plan: %s", line)
        heading = f"Dry run of {run.spec.service} {run.request.version} to {run.request.environment}: every " \
                  f"pre-traffic gate passed; nothing was changed. The release would:"
        release_notifier_for(run.ledger, run.release_id, run.writer).say("dry_run_plan", f"{heading}\n{text}")
        return plan


class GateOperator(ReleaseOperator):
    """Check one gate, record its evidence, and fail naming the gate, the measured value and the threshold."""

    ui_color = "#fef9e7"

    def __init__(self, *, gate: str, attestation_task: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.attestation_task = attestation_task  # the task that asks this gate's role in the UI

    def execute(self, context: Any) -> dict[str, Any]:
        run = ReleaseRun(self.spec_path, context)
        gate = run.spec.gate(self.gate)
        check_context = run.check_context()
        if self.attestation_task:
            answer = context["ti"].xcom_pull(task_ids=self.attestation_task) or {}
            check_context.attestations.update(answer.get("confirmed") or {})
            check_context.attestations_not_confirmed.update(answer.get("not_confirmed") or {})
            if gate.name in (answer.get("not_asked") or []):  # a dry run's: recorded by no one, in its plan
                self.log.info("a dry run asks no one: %s would be asked of the %s", gate.name, gate.params["role"])
                return {"verdict": "not asked in a dry run"}
        evidence = evaluate_gate(gate, run.profile, check_context)
        run.ledger.record_gate(
            run.release_id, gate=gate.name, phase=gate.phase.value, kind=gate.kind, evidence=evidence, writer=run.writer
        )
        message = evidence.describe(gate.name)
        if not evidence.verdict.lets_release_continue:
            raise GateFailed(message)
        self.log.info("%s [%s]", message, gate.item)
        return {"verdict": evidence.verdict.value, "measured": evidence.measured, "threshold": evidence.threshold}


class FinishReleaseOperator(ReleaseOperator):
    """Close the release whatever happened: record the outcome, free the environment, fail unless promoted."""

    ui_color = "#d5f5e3"

    def __init__(self, *, promoted_task: str, rollback_task: str, planned_task: str,
                 after_rollback: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(trigger_rule="all_done", **kwargs)
        self.promoted_task = promoted_task
        self.rollback_task = rollback_task
        self.planned_task = planned_task
        self.after_rollback = after_rollback

    def execute(self, context: Any) -> str:
        run = ReleaseRun(self.spec_path, context)
        try:
            request = run.request
        except RequestError as exc:
            raise GateFailed(f"release never started: {exc}") from None
        states = task_states(context)
        recorded = run.ledger.gate_verdicts(run.release_id)
        outcome, message = release_outcome(
            states, promoted_task=self.promoted_task, rollback_task=self.rollback_task, planned_task=self.planned_task,
            after_rollback=self.after_rollback, release_recorded=run.ledger.release(run.release_id) is not None,
            recorded=recorded, version=request.version, environment=request.environment)
        if run.ledger.environment_holder(request.environment):
            run.ledger.release_environment(request.environment, run.release_id)
        if outcome is None:  # refused before it was recorded (start_release's log names the field and the rule)
            raise GateFailed("release never started: start_release refused it before recording anything")
        run.event(outcome, message)
        notifier = release_notifier(run)
        gates = run.spec.gates_in(Phase.POST_DEPLOYMENT)
        if any(gate.name in recorded for gate in gates):
            notifier.say("post_deployment", "post-deployment validation: " + "; ".join(phase_results(gates, recorded)))
        notifier.say("finished", f"release {outcome}: {message}")
        if outcome not in ("promoted", "planned"):
            raise GateFailed(f"release {outcome}: {message}")
        self.log.info("release promoted: %s", message)
        return outcome
