"""``release_compliance``: every release of the period carries the evidence the checklist asks for, read from the
release ledger. A release is incomplete when it has no outcome, when an approval was given by the person who
triggered it (four eyes), when a rollback is missing or was not verified, and, for a release that reached an outcome
needing full evidence (promoted by default), when a gate of the spec has no recorded verdict (a waiver counts as
the recorded exemption), an attestation names nobody, or an approval of the spec was never approved."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind
from sap_llm_release.audits.model import Finding
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.ledger import RELEASE_OUTCOMES

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

ROLLED_BACK = ("rolled_back", "rollback_failed")
MAX_NAMED_GATES = 10


class ReleaseComplianceParams(Params):
    full_evidence_for: list[Literal[RELEASE_OUTCOMES]] = Field(
        default=["promoted"], description="outcomes whose releases must carry every gate and every approval")


class ReleaseCompliance(AuditKind):
    """Measured is the number of incomplete releases; the detail names each with what it lacks."""

    Params = ReleaseComplianceParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ReleaseComplianceParams = check.check_params
        ledger = context.require_ledger()
        if not context.gates:
            raise CheckUnavailable("the spec's gate names were not given to the audit")
        releases = ledger.releases_recorded_between(context.period_start, context.period_end, context.service)
        gaps = {release["release_id"]: missing_evidence(ledger, release, context, params.full_evidence_for)
                for release in releases}
        incomplete = {release_id: missing for release_id, missing in gaps.items() if missing}
        if incomplete:
            detail = "; ".join(f"{release_id}: {', '.join(missing)}" for release_id, missing in incomplete.items())
        else:
            detail = (f"all {len(releases)} releases of the period carry complete evidence" if releases
                      else "no release started in the period")
        return Finding(check=check.name, kind="release_compliance", severity=check.judge(len(incomplete)),
                       measured=len(incomplete), threshold=check.bounds(), detail=detail)


def missing_evidence(ledger: Any, release: dict[str, Any], context: AuditContext,
                     full_evidence_for: list[str]) -> list[str]:
    """What ``release``'s record lacks, each named (empty when complete)."""
    release_id = release["release_id"]
    outcome_row = ledger.release_outcome(release_id)
    outcome = outcome_row["event"] if outcome_row else None
    approvals = ledger.approvals(release_id)
    missing = [] if outcome else ["no outcome recorded"]
    missing += _own_approvals(approvals, release["triggered_by"], context.people)
    missing += _rollback_gaps(ledger.rollbacks(release_id), outcome)
    if outcome in full_evidence_for:
        missing += _gate_gaps(ledger.gate_verdicts(release_id), context.gates)
        approved = {row["gate"] for row in approvals if row["decision"] == "approved"}
        missing += [f"approval {name} not approved" for name in context.approvals if name not in approved]
    return missing


def _own_approvals(approvals: list[dict[str, Any]], triggered_by: str, people: dict[str, str]) -> list[str]:
    """An approval given by the person who triggered the release, under their Airflow or their Slack name."""
    # imported here: the approvals package imports the spec, which imports the audit kinds
    from sap_llm_release.approvals.decision import SLACK_USER_PREFIX

    own = {triggered_by} | ({f"{SLACK_USER_PREFIX}{people[triggered_by]}"} if triggered_by in people else set())
    return [f"approval {row['gate']} approved by {row['decided_by']}, who triggered the release (four eyes)"
            for row in approvals if row["decision"] == "approved" and row["decided_by"] in own]


def _rollback_gaps(rollbacks: list[dict[str, Any]], outcome: str | None) -> list[str]:
    """A rolled-back release without a rollback record, or whose last rollback was not verified."""
    if not rollbacks:
        return [f"outcome {outcome} but no rollback recorded"] if outcome in ROLLED_BACK else []
    last = rollbacks[-1]
    if rollback_verified(last):
        return []
    return [f"rollback not verified (blue weight {last['blue_weight_after']} %, green removed "
            f"{bool(last['green_removed'])}, blue healthy {bool(last['blue_healthy'])})"]


def rollback_verified(rollback: dict[str, Any]) -> bool:
    """A rollback record that shows all traffic on blue, green removed and blue verified healthy."""
    return rollback["blue_weight_after"] == 100 and bool(rollback["green_removed"]) and bool(rollback["blue_healthy"])


def _gate_gaps(verdicts: dict[str, dict[str, Any]], gates: tuple[str, ...]) -> list[str]:
    """Gates of the spec with no recorded verdict (at most ``MAX_NAMED_GATES`` named), and attestations that name
    nobody."""
    unrecorded = [gate for gate in gates if gate not in verdicts]
    gaps = []
    if unrecorded:
        named = ", ".join(unrecorded[:MAX_NAMED_GATES])
        more = f" and {len(unrecorded) - MAX_NAMED_GATES} more" if len(unrecorded) > MAX_NAMED_GATES else ""
        gaps.append(f"{len(unrecorded)} of {len(gates)} gates without a verdict ({named}{more})")
    gaps += [f"gate {gate} attested by nobody" for gate, row in verdicts.items()
             if gate in gates and row["verdict"] == "attested" and not row["attested_by"]]
    return gaps
