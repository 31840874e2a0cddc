"""Evaluate one gate of the spec under a profile: waived, or checked with its kind's check."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.deployers.base import DeployError
from sap_llm_release.evidence import Evidence, Verdict
from sap_llm_release.routers.base import RouterError
from sap_llm_release.spec import Gate, Profile


class GateFailed(RuntimeError):
    """A gate did not pass; the message names the gate, the measured value and the threshold."""


def evaluate_gate(gate: Gate, profile: Profile, context: CheckContext) -> Evidence:
    """Check ``gate``; a gate the profile waives is recorded as waived, never as passed."""
    if waiver := profile.waiver_for(gate.name):
        return Evidence(Verdict.WAIVED, None, str(gate.threshold or ""), f"waived: {waiver.reason}")
    threshold, scaled = gate.threshold, profile.scaled_threshold_for(gate.name)
    if scaled:
        threshold = scaled.threshold
    check = CHECK_KINDS[gate.kind]()
    try:
        evidence = check.run(gate.check_params, threshold, replace(context, gate_name=gate.name))
    except (CheckUnavailable, RouterError, DeployError) as exc:
        evidence = Evidence.unmeasured(threshold, f"cannot check: {exc}")
    if scaled:
        note = f"held to {scaled.threshold} instead of {gate.threshold}: {scaled.reason}"
        evidence = replace(evidence, detail=f"{evidence.detail}; {note}" if evidence.detail else note)
    if evidence.verdict is Verdict.FAILED and gate.fix_forward and gate.name in context.fix_forward:
        return fixed_forward(evidence, gate, context.fix_forward[gate.name], context.requester)
    return evidence


def fixed_forward(evidence: Evidence, gate: Gate, approval: dict[str, str], requester: str) -> Evidence:
    """A failed gate let through as the fix-forward its approver approved (attested, what was measured kept), or
    still failed, saying why, when the approver is not one of the gate's or is the requester."""
    by, link = approval["by"], approval["link"]
    if refused := gate.fix_forward.refusal(by, requester):
        return replace(evidence, detail=f"{evidence.detail}; fix-forward refused: {refused}")
    return replace(evidence, verdict=Verdict.ATTESTED, evidence_uri=link, extra={**evidence.extra, "attested_by": by},
                   detail=f"{evidence.detail}; failed, let through as a fix-forward approved by {by} ({link})")


def phase_results(gates: list[Gate], recorded: dict[str, dict]) -> list[str]:
    """One line per phase, in checklist order: how many of its gates ended in each verdict, and how many have no
    record at all."""
    lines = []
    for phase in dict.fromkeys(gate.phase for gate in gates):
        verdicts = Counter(recorded[g.name]["verdict"] if g.name in recorded else "unrecorded"
                           for g in gates if g.phase is phase)
        lines.append(f"{phase.value}: " + ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items())))
    return lines
