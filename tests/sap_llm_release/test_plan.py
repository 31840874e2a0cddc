"""A dry run's plan: every action after the pre-traffic gates, in order, with the profile's windows, approvals and
slots."""

from __future__ import annotations

import pytest

from sap_llm_release.plan import release_plan
from sap_llm_release.request import validate_request
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE, attestations

SPEC = load_spec(SPEC_FILE)


def plan(profile: str, environment: str, blue_slot: str = "blue", skip: tuple[str, ...] = ()) -> list[str]:
    request = validate_request({"version": "2.0.0", "environment": environment, "profile": profile,
                                "attestations": attestations(skip)}, SPEC)
    return release_plan(SPEC, request, blue_slot)


def test_the_attestations_not_given_come_first_with_whom_the_release_would_ask():
    lines = plan("production", "production", skip=("dr_runbook", "dr_backup_strategy_documented",
                                                   "business_sap_integration"))
    assert lines[:2] == [
        "at the start: ask the SRE (sre.lead, sre.oncall) on the Required Actions page to confirm "
        "dr_backup_strategy_documented, dr_runbook (not given with the trigger), within 8 h",
        "when post_deployment starts: ask the business owner (business.owner) on the Required Actions page to "
        "confirm business_sap_integration (not given with the trigger), within 8 h",
    ]
    assert lines[2].startswith("before deploying: ")
    assert plan("rehearsal", "rehearsal", skip=("dr_runbook",))[0].endswith("within 10 min")


def test_the_production_plan_in_order_with_its_real_windows():
    lines = plan("production", "production")
    clear = 'wait for no alert of ALERTS{alertstate="firing",severity="critical"} to fire, at most 3 min; refuse ' \
            'naming those still firing'
    assert lines[0] == f"before deploying: {clear}"
    assert lines[1] == ("deploy sap-llm 2.0.0 to the green slot (green) of production; the blue slot (blue) keeps "
                        "100 % of the traffic")
    assert lines[2].startswith("smoke_green: check 11 gates on green (load_test_throughput,")
    assert lines[3].startswith("ask first_shift_go in Slack") and lines[3].endswith("no answer within 4 h rejects")
    assert lines[4] == f"before the first shift: {clear}"
    assert lines[5] == ("send 5 % to green, then watch error_rate, p95_latency, throughput, critical_alerts for "
                        "30 min (every 1 min)")
    assert [line.split(",")[0] for line in lines if line.startswith("send ")] == [
        "send 5 % to green", "send 20 % to green", "send 50 % to green", "send 100 % to green"]
    full = next(index for index, line in enumerate(lines) if line.startswith("send 100 %"))
    assert lines[full - 1].startswith("ask full_traffic_go in Slack")  # asked right before the 100 % shift
    assert lines[full + 1] == "bake: watch green at 100 % for 24 h, blue kept up"
    assert lines[-3].startswith("ask decommission_blue_go") and lines[-3].endswith("no answer within 8 h rejects")
    assert lines[-2] == "decommission blue (the blue slot) once no traffic is left on it"
    assert lines[-1] == ("on a failure once traffic moved: all traffic back to blue, green removed, blue watched for "
                         "10 min, PagerDuty paged")


def test_the_rehearsal_plan_uses_the_profiles_compressed_windows():
    lines = plan("rehearsal", "rehearsal")
    assert "send 5 % to green, then watch error_rate, p95_latency, throughput, critical_alerts for 4 s (every 2 s)" \
        in lines
    assert "bake: watch green at 100 % for 12 s, blue kept up" in lines
    assert lines[3].endswith("no answer within 45 s rejects")
    assert lines[-1].endswith("blue watched for 8 s, PagerDuty paged")


@pytest.mark.parametrize("blue_slot, green_slot", [("blue", "green"), ("green", "blue")])
def test_green_is_the_slot_blue_does_not_use(blue_slot, green_slot):
    lines = plan("rehearsal", "staging", blue_slot)
    assert lines[1].startswith(f"deploy sap-llm 2.0.0 to the {green_slot} slot (green) of staging; the {blue_slot} "
                               "slot (blue) keeps")
    assert lines[-2] == f"decommission blue (the {blue_slot} slot) once no traffic is left on it"
