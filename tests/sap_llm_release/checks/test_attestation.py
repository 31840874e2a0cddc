"""Attestation gates: recorded as attested with who and a link, never as verified."""

from __future__ import annotations

from sap_llm_release.checks.attestation import Attestation, AttestationParams
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.evidence import Verdict

PARAMS = AttestationParams(role="security lead")


def run(attestations: dict, gate: str = "network_firewall_rules"):
    return Attestation().run(PARAMS, None, CheckContext(service="sap-llm", gate_name=gate, attestations=attestations))


def test_missing_attestation_fails_naming_the_role():
    evidence = run({})
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, "")
    assert evidence.detail == "no attestation for network_firewall_rules (none given); the security lead must attest"


def test_why_the_ui_confirmed_none_is_in_the_detail():
    context = CheckContext(service="sap-llm", gate_name="network_firewall_rules", attestations={},
                           attestations_not_confirmed={"network_firewall_rules": "not ticked by network.owner"})
    evidence = Attestation().run(PARAMS, None, context)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.detail == ("no attestation for network_firewall_rules (not ticked by network.owner); the security "
                               "lead must attest")


def test_attestation_of_another_gate_does_not_count():
    evidence = run({"network_ddos_protection": {"by": "Dana", "link": "https://wiki/ddos"}})
    assert evidence.verdict is Verdict.FAILED


def test_empty_attestation_does_not_count():
    assert run({"network_firewall_rules": {}}).verdict is Verdict.FAILED


def test_given_attestation_is_attested():
    evidence = run({"network_firewall_rules": {"by": "Dana Sec", "link": "https://wiki/firewall-review"}})
    assert evidence.verdict is Verdict.ATTESTED
    assert evidence.verdict is not Verdict.PASSED
    assert evidence.measured is None
    assert evidence.detail == "attested by Dana Sec (security lead)"
    assert evidence.evidence_uri == "https://wiki/firewall-review"
    assert evidence.extra == {"attested_by": "Dana Sec"}
