"""Attestations a person confirms in the Airflow UI: where the release asks each role (once at the start for all
its pre-traffic items, then in green's deployment and after it, as those phases start), what it asks (the items not
given in the trigger's conf), the form it is asked with, and what an answer confirms. Who confirmed is the user who
answered, never a typed name; an item counts only when ticked, with a link to its evidence, by one of the role's
attesters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sap_llm_release.request import LINK_MAX_LENGTH, LINK_PATTERN, Attestation, ReleaseRequest
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, Gate, Phase, ReleaseSpec

LINK_PARAM_PREFIX = "link_"


PRE_TRAFFIC_GROUP = "attestations"  # the task group that asks every role for its pre-traffic items at the start


def role_task_id(role: str) -> str:
    """The task that asks ``role`` for its items, e.g. ``attest_security_lead``."""
    return "attest_" + re.sub(r"[^a-z0-9]+", "_", role.lower()).strip("_")


@dataclass(frozen=True)
class AttestationPoint:
    """Where the release asks ``role`` for its items of ``phases``: in task group ``group``."""

    group: str
    phases: tuple[Phase, ...]
    role: str

    @property
    def when(self) -> str:
        return "at the start" if self.group == PRE_TRAFFIC_GROUP else f"when {self.group} starts"


def attestation_points(spec: ReleaseSpec) -> list[AttestationPoint]:
    """Each role with pre-traffic items is asked once, at the start, for all of them (the phases' checks run
    meanwhile); a role with items in a later phase is asked when that phase starts."""
    pre_traffic = [phase for phase in Phase if phase in PRE_TRAFFIC_PHASES]
    roles = dict.fromkeys(role for phase in pre_traffic for role in spec.attestation_roles_in(phase))
    points = [AttestationPoint(PRE_TRAFFIC_GROUP, tuple(pre_traffic), role) for role in roles]
    for phase in (phase for phase in Phase if phase not in PRE_TRAFFIC_PHASES):
        points += [AttestationPoint(phase.value, (phase,), role) for role in spec.attestation_roles_in(phase)]
    return points


@dataclass(frozen=True)
class AttestationAsk:
    """The items of ``phases`` that ``role`` is asked to confirm, and the Airflow users who may."""

    phases: tuple[Phase, ...]
    role: str
    gates: tuple[Gate, ...]
    attesters: tuple[str, ...]

    @property
    def options(self) -> list[str]:
        """One choice per item, labelled with the checklist's words (the gate's name where two items read alike)."""
        items = [gate.item for gate in self.gates]
        return [gate.item if items.count(gate.item) == 1 else f"{gate.item} ({gate.name})" for gate in self.gates]

    def link_params(self) -> dict[str, dict[str, Any]]:
        """One link field per item, as Airflow param schemas (optional: only ticked items need theirs)."""
        return {
            f"{LINK_PARAM_PREFIX}{gate.name}": {
                "default": None, "type": ["null", "string"], "maxLength": LINK_MAX_LENGTH, "pattern": LINK_PATTERN,
                "title": f"Evidence: {option}", "description": f"a link to the evidence for {gate.name} "
                                                              f"(https://, http:// or file://)",
            }
            for gate, option in zip(self.gates, self.options, strict=True)
        }

    def subject(self, spec: ReleaseSpec, request: ReleaseRequest) -> str:
        return (f"{self.role}: confirm {len(self.gates)} checklist item{'s' if len(self.gates) > 1 else ''} for "
                f"{spec.service} {request.version}")

    def body(self, deadline: str) -> str:
        return "\n".join([
            f"Tick each item you confirm and give a link to its evidence. Only {', '.join(self.attesters)} may "
            f"answer; you are recorded as who confirmed. An item not ticked, or without a link, fails its gate "
            f"and stops the release. No answer by {deadline} UTC confirms nothing.", "",
            *(f"- {gate.item} ({gate.name}, {gate.phase.value})" for gate in self.gates),
        ])


def role_gates(spec: ReleaseSpec, phases: tuple[Phase, ...], role: str) -> tuple[Gate, ...]:
    """``role``'s attestation gates in ``phases``, in the spec's order."""
    return tuple(gate for phase in phases for gate in spec.attestation_roles_in(phase).get(role, []))


def attestations_to_ask(spec: ReleaseSpec, request: ReleaseRequest, phases: tuple[Phase, ...],
                        role: str) -> AttestationAsk:
    """``role``'s attestation gates in ``phases`` that the request gave no attestation for and its profile does not
    waive."""
    profile = spec.profile(request.profile)
    gates = tuple(gate for gate in role_gates(spec, phases, role)
                  if gate.name not in request.attestations and profile.waiver_for(gate.name) is None)
    return AttestationAsk(phases, role, gates, tuple(spec.attesters.get(role, ())))


@dataclass(frozen=True)
class AttestationAnswer:
    """What an answer confirmed (gate -> ``{"by", "link"}``) and why each other item was not (gate -> reason)."""

    confirmed: dict[str, dict[str, str]]
    not_confirmed: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"confirmed": self.confirmed, "not_confirmed": self.not_confirmed}


def unanswered(ask: AttestationAsk, why: str) -> AttestationAnswer:
    return AttestationAnswer({}, {gate.name: why for gate in ask.gates})


def answer_of(ask: AttestationAsk, chosen: list[str], links: Mapping[str, Any],
              user: Mapping[str, Any] | None) -> AttestationAnswer:
    """Read an answer from the Required Actions page: ``chosen`` the ticked options, ``links`` the link fields,
    ``user`` Airflow's ``responded_by_user`` (``id``, ``name``)."""
    if user is None:
        return unanswered(ask, f"no answer from the {ask.role} ({', '.join(ask.attesters)})")
    who = str(user.get("id") or "")
    if who not in ask.attesters:
        return unanswered(ask, f"answered by {who or 'an unknown user'}, who is not an attester of the {ask.role} "
                               f"({', '.join(ask.attesters)})")
    confirmed, not_confirmed = {}, {}
    for gate, option in zip(ask.gates, ask.options, strict=True):
        link = links.get(f"{LINK_PARAM_PREFIX}{gate.name}")
        if option not in chosen:
            not_confirmed[gate.name] = f"not ticked by {who} ({ask.role}) on the Required Actions page"
            continue
        try:
            confirmed[gate.name] = Attestation(by=who, link=link or "").model_dump()
        except ValidationError:
            not_confirmed[gate.name] = (f"ticked by {who} ({ask.role}) without a valid link to its evidence "
                                        f"(https://, http:// or file://)")
    return AttestationAnswer(confirmed, not_confirmed)
