"""What a release would do from its deploy on, step by step, without doing any of it: a dry run's plan, read from the
spec, the request and the live router's blue slot; first, whom it would ask for the attestations not given."""

from __future__ import annotations

from datetime import timedelta

from sap_llm_release.approvals.attestations import attestation_points, attestations_to_ask
from sap_llm_release.request import ReleaseRequest
from sap_llm_release.spec import Approval, ApprovalPoint, Phase, ReleaseSpec
from sap_llm_release.targets import slots_for

# the phases a dry run cannot check: each needs green deployed or serving traffic
UNCHECKED_PHASES = (Phase.SMOKE_GREEN, Phase.POST_DEPLOYMENT, Phase.DECOMMISSION_BLUE)


def release_plan(spec: ReleaseSpec, request: ReleaseRequest, blue_slot: str) -> list[str]:
    """One line per action the release would take after the pre-traffic gates passed, in order, with the windows,
    approvals and slots it would use under the request's profile."""
    profile, slots = request.profile, slots_for(blue_slot)
    slos = ", ".join(slo.name for slo in spec.analysis.slos)
    every = _duration(spec.analysis_interval(profile))
    lines = [*_attestation_lines(spec, request), *_clear_line(spec, "deploying"),
             f"deploy {spec.service} {request.version} to the {slots['green']} slot (green) of "
             f"{request.environment}; the {slots['blue']} slot (blue) keeps 100 % of the traffic",
             _gates_line(spec, Phase.SMOKE_GREEN)]
    for step in spec.traffic.steps:
        point = ApprovalPoint.FIRST_SHIFT if step == spec.traffic.steps[0] else (
            ApprovalPoint.FULL_TRAFFIC if step.weight == 100 else None)
        if point is not None and (approval := spec.approval_before(point)) is not None:
            lines.append(_approval_line(spec, approval, profile))
        if step == spec.traffic.steps[0]:
            lines += _clear_line(spec, "the first shift")
        lines.append(f"send {step.weight} % to green, then watch {slos} for "
                     f"{_duration(spec.window_for(step, profile))} (every {every})")
    if bake := spec.bake_window(profile):
        lines.append(f"bake: watch green at 100 % for {_duration(bake)}, blue kept up")
    lines.append(_gates_line(spec, Phase.POST_DEPLOYMENT))
    if approval := spec.approval_before(ApprovalPoint.DECOMMISSION_BLUE):
        lines.append(_approval_line(spec, approval, profile))
    lines.append(f"decommission blue (the {slots['blue']} slot) once no traffic is left on it")
    lines.append(f"on a failure once traffic moved: all traffic back to blue, green removed, blue watched for "
                 f"{_duration(spec.recovery_window(profile))}, PagerDuty paged")
    return lines


def _attestation_lines(spec: ReleaseSpec, request: ReleaseRequest) -> list[str]:
    """The attestations not given with the trigger (a dry run checks none of them): whom the release would ask."""
    lines = []
    for point in attestation_points(spec):
        ask = attestations_to_ask(spec, request, point.phases, point.role)
        if ask.gates:
            lines.append(f"{point.when}: ask the {point.role} ({', '.join(ask.attesters)}) on the Required Actions "
                         f"page to confirm {', '.join(gate.name for gate in ask.gates)} (not given with the "
                         f"trigger), within {_duration(spec.attestation_timeout_for(request.profile))}")
    return lines


def _clear_line(spec: ReleaseSpec, before: str) -> list[str]:
    clear = spec.analysis.clear_before_traffic
    if clear is None:
        return []
    return [f"before {before}: wait for no alert of {clear.alerts} to fire, at most {_duration(clear.wait)}; "
            f"refuse naming those still firing"]


def _gates_line(spec: ReleaseSpec, phase: Phase) -> str:
    gates = spec.gates_in(phase)
    return f"{phase.value}: check {len(gates)} gates on green ({', '.join(gate.name for gate in gates)})"


def _approval_line(spec: ReleaseSpec, approval: Approval, profile: str) -> str:
    who = ", ".join([*approval.approvers, *([approval.approver_group] if approval.approver_group else [])])
    timeout = _duration(spec.approval_timeout(approval, profile))
    return f"ask {approval.name} in Slack ({approval.description}) of {who}; no answer within {timeout} rejects"


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
