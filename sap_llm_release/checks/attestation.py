"""Items only a person can confirm: recorded as attested with who and a link, never as verified."""

from __future__ import annotations

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold, Verdict


class AttestationParams(Params):
    role: str = Field(min_length=2, description="who is expected to attest, e.g. 'operations lead'")


class Attestation(Check):
    needs_threshold = False
    Params = AttestationParams

    def run(self, params: AttestationParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        gate = context.gate_name
        given = context.attestations.get(gate)
        if not given:
            why = context.attestations_not_confirmed.get(gate, "none given")
            return Evidence.unmeasured(None, f"no attestation for {gate} ({why}); the {params.role} must attest")
        return Evidence(
            Verdict.ATTESTED,
            None,
            "",
            f"attested by {given['by']} ({params.role})",
            evidence_uri=given["link"],
            extra={"attested_by": given["by"]},
        )
