"""Attestations asked in the Airflow UI: what a phase asks of a role, the form, and what an answer confirms."""

from __future__ import annotations

import pytest
import yaml

from sap_llm_release.approvals.attestations import (
    PRE_TRAFFIC_GROUP,
    answer_of,
    attestation_points,
    attestations_to_ask,
    role_task_id,
    unanswered,
)
from sap_llm_release.request import validate_request
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, Phase, SpecError, load_spec, parse_spec
from tests.support.runs import SPEC_FILE, attestations

SPEC = load_spec(SPEC_FILE)
SRE_PREFLIGHT = ("dr_backup_strategy_documented", "dr_runbook")
LINK = "https://wiki.example.com/dr/runbook"


def ask(skip: tuple[str, ...] = SRE_PREFLIGHT, profile: str = "production"):
    request = validate_request({"version": "2.0.0", "environment": profile, "profile": profile,
                                "attestations": attestations(skip)}, SPEC)
    return attestations_to_ask(SPEC, request, (Phase.PREFLIGHT,), "SRE")


def sre_user(user: str = "sre.oncall") -> dict:
    return {"id": user, "name": user}


def test_only_the_items_not_given_with_the_trigger_are_asked_of_the_roles_attesters():
    asked = ask(skip=("dr_runbook",))
    assert [gate.name for gate in asked.gates] == ["dr_runbook"]
    assert asked.attesters == ("sre.lead", "sre.oncall")
    assert ask(skip=()).gates == ()
    assert [gate.name for gate in ask().gates] == list(SRE_PREFLIGHT)


def test_each_role_is_asked_once_at_the_start_for_all_its_pre_traffic_items_and_later_items_in_their_phase():
    points = attestation_points(SPEC)
    at_start = [point for point in points if point.group == PRE_TRAFFIC_GROUP]
    assert {point.role for point in at_start} == {
        gate.params["role"] for gate in SPEC.gates if gate.kind == "attestation" and gate.phase in PRE_TRAFFIC_PHASES}
    (sre,) = [point for point in at_start if point.role == "SRE"]
    request = validate_request({"version": "2.0.0", "environment": "production", "profile": "production"}, SPEC)
    asked = attestations_to_ask(SPEC, request, sre.phases, "SRE")
    assert len(asked.gates) == 9 and {gate.phase for gate in asked.gates} == {Phase.MONITORING, Phase.PREFLIGHT}
    later = [(point.group, point.role, point.when) for point in points if point.group != PRE_TRAFFIC_GROUP]
    assert later == [("deploy_green", "release manager", "when deploy_green starts"),
                     ("post_deployment", "business owner", "when post_deployment starts")]
    assert sum(len(attestations_to_ask(SPEC, request, point.phases, point.role).gates) for point in points) == len(
        [gate for gate in SPEC.gates if gate.kind == "attestation"])  # each asked once


def test_the_form_lists_each_item_with_an_optional_link_field():
    asked = ask()
    assert asked.options == ["Backup strategy documented", "DR runbook created"]
    params = asked.link_params()
    assert list(params) == ["link_dr_backup_strategy_documented", "link_dr_runbook"]
    assert params["link_dr_runbook"]["type"] == ["null", "string"] and params["link_dr_runbook"]["default"] is None
    assert "DR runbook created" in params["link_dr_runbook"]["title"]
    assert "dr_runbook" in asked.body("2026-12-02 18:00:00") and "sre.lead, sre.oncall" in asked.body("x")


def test_a_ticked_item_with_a_link_is_confirmed_by_the_user_who_answered():
    answer = answer_of(ask(), ["DR runbook created"], {"link_dr_runbook": LINK}, sre_user())
    assert answer.confirmed == {"dr_runbook": {"by": "sre.oncall", "link": LINK}}
    assert answer.not_confirmed == {
        "dr_backup_strategy_documented": "not ticked by sre.oncall (SRE) on the Required Actions page"}


@pytest.mark.parametrize("link", [None, "", "javascript:alert(1)", "https://wiki/with space"])
def test_a_ticked_item_without_a_valid_link_is_not_confirmed(link):
    answer = answer_of(ask(), ["DR runbook created"], {"link_dr_runbook": link}, sre_user())
    assert "dr_runbook" not in answer.confirmed
    assert answer.not_confirmed["dr_runbook"].startswith("ticked by sre.oncall (SRE) without a valid link")


def test_an_answer_from_someone_outside_the_role_confirms_nothing():
    answer = answer_of(ask(), ["DR runbook created"], {"link_dr_runbook": LINK}, {"id": "admin", "name": "admin"})
    assert answer.confirmed == {}
    assert answer.not_confirmed["dr_runbook"] == ("answered by admin, who is not an attester of the SRE "
                                                  "(sre.lead, sre.oncall)")


def test_no_answer_confirms_nothing_and_says_why():
    assert answer_of(ask(), [], {}, None).confirmed == {}
    timed_out = unanswered(ask(), "no answer within 8 h")
    assert timed_out.to_dict() == {"confirmed": {}, "not_confirmed": {gate: "no answer within 8 h"
                                                                       for gate in SRE_PREFLIGHT}}


def test_a_waived_item_is_not_asked():
    spec = SPEC.model_copy(deep=True)
    spec.profiles["rehearsal"].waivers.append(
        spec.profiles["rehearsal"].waivers[0].model_copy(update={"gate": "dr_runbook"}))
    request = validate_request({"version": "2.0.0", "environment": "rehearsal", "profile": "rehearsal"}, spec)
    asked = attestations_to_ask(spec, request, (Phase.PREFLIGHT,), "SRE")
    assert [gate.name for gate in asked.gates] == ["dr_backup_strategy_documented"]


def test_task_ids_name_the_role():
    assert [role_task_id(role) for role in ("SRE", "on-call lead", "ML lead")] == [
        "attest_sre", "attest_on_call_lead", "attest_ml_lead"]


def test_the_spec_refuses_an_attestation_role_nobody_may_confirm():
    data = yaml.safe_load(SPEC_FILE.read_text())
    del data["attesters"]["business owner"]
    with pytest.raises(SpecError, match="attesters: no Airflow user may confirm business_sap_integration "
                                        r"\(role 'business owner'\)"):
        parse_spec(data)
