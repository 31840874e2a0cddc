"""Compose the release DAG from a spec: one task group per checklist phase, gates as tasks."""

from __future__ import annotations

from airflow.sdk import Param, TaskGroup, chain

from operators.approvals import ReleaseApprovalOperator
from operators.attestations import AttestationRequestOperator
from operators.jobs import InferenceJobOperator
from operators.release import (
    DryRunOrDeployOperator,
    DryRunPlanOperator,
    FinishReleaseOperator,
    GateOperator,
    StartReleaseOperator,
)
from operators.sensors import DEFERRAL_RETRIES, AlertsClearSensor, BlueRecoverySensor, SLOWindowSensor
from operators.traffic import (
    ROLLBACK_RETRIES,
    ROLLBACK_RETRY_DELAY,
    CountLostRequestsOperator,
    DecommissionBlueOperator,
    DeployGreenOperator,
    ReleaseDecisionOperator,
    RollbackOperator,
    ShiftTrafficOperator,
)
from sap_llm_release.approvals.attestations import (
    PRE_TRAFFIC_GROUP,
    AttestationAsk,
    attestation_points,
    role_gates,
    role_task_id,
)
from sap_llm_release.request import trigger_params_schema
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, ApprovalPoint, Phase, ReleaseSpec
from sap_llm_release.targets import KUBERNETES_SETTINGS_ENV, TargetError, deployable_on_cluster

ROLLBACK_TASK = "rollback.rollback_to_blue"
# The draft the trigger form's schemas are written in. Declared, jsonschema checks each schema against draft 7's
# metaschema instead of 2020-12's (dynamic references): about a quarter of the CPU per check, and Airflow checks
# every param's schema again each time it resolves it, twice per task whenever it serializes the DAG.
JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"


def _gate_tasks(spec: ReleaseSpec, spec_path: str, phase: Phase,
                asks: dict[str, AttestationRequestOperator] | None = None) -> list[GateOperator]:
    """The phase's gates; the phase's jobs run first, one after another, each before the gates that read it; an
    attestation gate after its role's Required Actions request (``asks`` by role, else asked in the phase)."""
    jobs = {
        job.name: InferenceJobOperator(task_id=f"run_{job.name}", spec_path=spec_path, job=job.name,
                                       doc_md=f"{job.image} {job.command}")
        for job in spec.jobs_in(phase)
    }
    chain(*jobs.values())
    if asks is None:
        asks = _attestation_requests(spec, spec_path, phase.value)
    gates = []
    for gate in spec.gates_in(phase):
        ask = asks.get(gate.params.get("role")) if gate.kind == "attestation" else None
        task = GateOperator(task_id=gate.name, spec_path=spec_path, gate=gate.name, doc_md=gate.item,
                            attestation_task=ask.task_id if ask else None)
        if gate.kind == "job_result" and gate.params["job"] in jobs:
            jobs[gate.params["job"]] >> task
        if ask:
            ask >> task
        gates.append(task)
    return gates


def _attestation_requests(spec: ReleaseSpec, spec_path: str, group: str) -> dict[str, AttestationRequestOperator]:
    """The Required Actions requests the spec makes in task group ``group`` (:func:`attestation_points`), by role."""
    asks = {}
    for point in (point for point in attestation_points(spec) if point.group == group):
        gates = role_gates(spec, point.phases, point.role)
        items = AttestationAsk(point.phases, point.role, gates, tuple(spec.attesters[point.role])).options
        asks[point.role] = AttestationRequestOperator(
            task_id=role_task_id(point.role), spec_path=spec_path, phases=point.phases, role=point.role,
            items=items, doc_md=f"the {point.role} confirms {', '.join(gate.name for gate in gates)} (those not "
                                f"given with the trigger)")
    return asks


def _phase_group(spec: ReleaseSpec, spec_path: str, phase: Phase,
                 asks: dict[str, AttestationRequestOperator] | None = None) -> TaskGroup:
    with TaskGroup(phase.value, tooltip=phase.value.replace("_", " ")) as group:
        _gate_tasks(spec, spec_path, phase, asks)
    return group


def _deploy_group(spec: ReleaseSpec, spec_path: str) -> TaskGroup:
    with TaskGroup(Phase.DEPLOY_GREEN.value) as group:
        gates = {task.task_id.split(".")[-1]: task for task in _gate_tasks(spec, spec_path, Phase.DEPLOY_GREEN)}
        readiness = gates.pop("green_environment_ready", None)
        deploy = DeployGreenOperator(task_id="deploy_green", spec_path=spec_path, **DEFERRAL_RETRIES)
        [*gates.values(), *_clear_of_alerts(spec, spec_path, "deploy")] >> deploy
        if readiness is not None:
            deploy >> readiness
    return group


def _approval(spec: ReleaseSpec, spec_path: str, point: ApprovalPoint, guard_weight: int) -> list:
    """The approval the spec asks for at ``point``, as a one-task list (empty when it asks for none)."""
    approval = spec.approval_before(point)
    if approval is None:
        return []
    return [ReleaseApprovalOperator(task_id=f"approve_{approval.name}", spec_path=spec_path, approval=approval.name,
                                    guard_weight=guard_weight, doc_md=approval.description)]


def _clear_of_alerts(spec: ReleaseSpec, spec_path: str, before: str) -> list[AlertsClearSensor]:
    """The wait for the spec's alerts to clear before ``before`` (deploy, shift), as a one-task list (empty when the
    spec asks for none)."""
    if spec.analysis.clear_before_traffic is None:
        return []
    return [AlertsClearSensor(task_id=f"clear_before_{before}", spec_path=spec_path, **DEFERRAL_RETRIES,
                              doc_md=f"no alert of {spec.analysis.clear_before_traffic.alerts} firing before the "
                                     f"{before}, waited for at most {spec.analysis.clear_before_traffic.wait}")]


def _traffic_group(spec: ReleaseSpec, spec_path: str) -> TaskGroup:
    with TaskGroup(Phase.TRAFFIC_SHIFT.value) as group:
        steps = _approval(spec, spec_path, ApprovalPoint.FIRST_SHIFT, guard_weight=0)
        steps += _clear_of_alerts(spec, spec_path, "shift")
        previous_weight = 0
        for step in spec.traffic.steps:
            if step.weight == 100:
                steps += _approval(spec, spec_path, ApprovalPoint.FULL_TRAFFIC, guard_weight=previous_weight)
            steps.append(ShiftTrafficOperator(task_id=f"shift_to_{step.weight:03d}", spec_path=spec_path,
                                              weight=step.weight, **DEFERRAL_RETRIES,
                                              doc_md=f"{step.weight} % to green, then its window watched"))
            previous_weight = step.weight
        chain(*steps)
    return group


def _post_deployment_group(spec: ReleaseSpec, spec_path: str) -> TaskGroup:
    """Post-deployment validation, the bake (green watched at 100 % with blue still up, where the plan has one),
    then the go-ahead to decommission blue."""
    with TaskGroup(Phase.POST_DEPLOYMENT.value) as group:
        steps: list = [_gate_tasks(spec, spec_path, Phase.POST_DEPLOYMENT)]
        if spec.traffic.bake:
            steps.append(SLOWindowSensor(task_id="bake_green", spec_path=spec_path, weight=100, bake=True,
                                         doc_md=f"green watched for {spec.traffic.bake} at 100 %, blue kept up",
                                         **DEFERRAL_RETRIES))
        steps += _approval(spec, spec_path, ApprovalPoint.DECOMMISSION_BLUE, guard_weight=100)
        chain(*steps)
    return group


# The trigger form's sections and titles, field by field, and the defaults it opens with: a rehearsal it can start as
# it opens (the optional fields empty).
_WHAT = "What to release"
_FOR_AUTOMATION = "Confirmations given up front (for automation)"
_FORM = {
    "version": (_WHAT, "Version", "1.1.0"),
    "environment": (_WHAT, "Environment", "rehearsal"),
    "profile": (_WHAT, "Profile", "rehearsal"),
    "dry_run": (_WHAT, "Dry run", False),
    "requested_by": ("Who asks", "Requested by", None),
    "attestations": (_FOR_AUTOMATION, "Attestations", None),
    "fix_forward": (_FOR_AUTOMATION, "Fix-forward approvals", None),
}


def release_params(spec: ReleaseSpec) -> dict[str, Param]:
    """The validated trigger form: the same rules as :class:`~sap_llm_release.request.ReleaseRequest`, each field
    titled, described with its rule and placed in its section; the profiles' choices say what each one does; the
    versions the cluster's settings deploy offered as proposals, each with its image digest."""
    params = {}
    for name, schema in trigger_params_schema(spec).items():
        section, title, default = _FORM[name]
        schema = {**schema, "title": title, "section": section}
        if name == "profile":
            schema["values_display"] = {profile: _profile_summary(spec, profile) for profile in spec.profiles}
        if name == "version":
            proposals, note = _deployable_versions(spec)
            schema["description"] += f". {note}"
            if proposals:
                schema["examples"] = list(dict.fromkeys([*proposals, default]))
        params[name] = Param(default, **{"$schema": JSON_SCHEMA_DRAFT}, **schema)
    return params


def _deployable_versions(spec: ReleaseSpec) -> tuple[list[str], str]:
    """The versions the Kubernetes target's settings pin an image for (newest first), and what the form says of
    them and of the local target."""
    rehearsal = [name for name, profile in spec.profiles.items() if profile.target == "local"]
    local = (f" The local target ({', '.join(rehearsal)} profile) serves any version with the rehearsal model."
             if rehearsal else "")
    try:
        deployable = deployable_on_cluster()
    except TargetError as exc:
        return [], f"The Kubernetes settings cannot be read ({exc}), so no cluster version is offered.{local}"
    if deployable is None:
        return [], f"No Kubernetes settings are configured here (${KUBERNETES_SETTINGS_ENV}).{local}"
    versions = sorted(deployable, key=_semver_key, reverse=True)
    pinned = "; ".join(f"{version}: {deployable[version]}" for version in versions)
    return versions, (f"Deployable on the Kubernetes target (its image by digest, from the target's settings): "
                      f"{pinned}. Any other version is refused when the release starts.{local}")


def _semver_key(version: str) -> tuple:
    """Order semantic versions by their numbers (a pre-release before its release; a part that is no number, which
    the settings allow in a label, first)."""
    core, _, pre = version.partition("-")
    return (*(int(part) if part.isdigit() else -1 for part in core.split(".")), pre == "", pre)


def _profile_summary(spec: ReleaseSpec, name: str) -> str:
    """What choosing the profile means, from the spec: its target, its windows' scale, the gates it waives."""
    profile = spec.profiles[name]
    windows = "real-time windows" if profile.window_scale == 1 else f"windows scaled x{profile.window_scale:g}"
    waived = f", {len(profile.waivers)} gates waived" if profile.waivers else ", no gate waived"
    return f"{name}: {profile.target} target, {windows}{waived}"


def compose_release(spec: ReleaseSpec, spec_path: str) -> None:
    """Add the release's task groups to the DAG being defined."""
    start = StartReleaseOperator(task_id="start_release", spec_path=spec_path)
    with TaskGroup(PRE_TRAFFIC_GROUP, tooltip="every role asked for its pre-traffic items at once") as attestations:
        asks = _attestation_requests(spec, spec_path, PRE_TRAFFIC_GROUP)
    pre_traffic = [_phase_group(spec, spec_path, phase, asks) for phase in PRE_TRAFFIC_PHASES]
    deploy = _deploy_group(spec, spec_path)
    smoke = _phase_group(spec, spec_path, Phase.SMOKE_GREEN)
    traffic = _traffic_group(spec, spec_path)
    post = _post_deployment_group(spec, spec_path)
    with TaskGroup(Phase.DECOMMISSION_BLUE.value) as decommission:
        no_traffic_left = _gate_tasks(spec, spec_path, Phase.DECOMMISSION_BLUE)
        remove_blue = DecommissionBlueOperator(task_id="remove_blue", spec_path=spec_path)
        no_traffic_left >> remove_blue
    with TaskGroup("rollback") as rollback:
        recovery = BlueRecoverySensor(task_id="watch_blue_recovery", spec_path=spec_path, **DEFERRAL_RETRIES)
        lost = CountLostRequestsOperator(task_id="count_lost_requests", spec_path=spec_path)
        RollbackOperator(task_id="rollback_to_blue", spec_path=spec_path, retries=ROLLBACK_RETRIES,
                         retry_delay=ROLLBACK_RETRY_DELAY) >> recovery >> lost
    decide = ReleaseDecisionOperator(
        task_id="decide_promote_or_rollback",
        spec_path=spec_path,
        start_task=start.task_id,
        first_shift=f"{Phase.TRAFFIC_SHIFT.value}.shift_to_{spec.traffic.steps[0].weight:03d}",
        watched_groups=(Phase.TRAFFIC_SHIFT.value, Phase.POST_DEPLOYMENT.value),
        promote_task=no_traffic_left[0].task_id if no_traffic_left else remove_blue.task_id,
        rollback_task=ROLLBACK_TASK,
    )
    plan = DryRunPlanOperator(task_id="dry_run_plan", spec_path=spec_path)
    dry_run_or_deploy = DryRunOrDeployOperator(task_id="dry_run_or_deploy", spec_path=spec_path,
                                               plan_task=plan.task_id,
                                               deploy_tasks=[task.task_id for task in deploy.roots])
    finish = FinishReleaseOperator(
        task_id="finish_release", spec_path=spec_path, promoted_task=remove_blue.task_id, rollback_task=ROLLBACK_TASK,
        planned_task=plan.task_id, after_rollback=(recovery.task_id, lost.task_id),
    )
    chain(start, *pre_traffic, dry_run_or_deploy, deploy, smoke, traffic, post, decide)
    start >> attestations
    dry_run_or_deploy >> plan >> finish
    decide >> [decommission, rollback]
    [decommission, rollback] >> finish
