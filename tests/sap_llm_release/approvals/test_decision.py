"""Only an explicit Approve by someone other than the release's trigger approves."""

from __future__ import annotations

import pytest

from sap_llm_release.approvals.decision import decision_of

SLACK_USER = {"id": "slack:U0RELMGR01", "name": "sam (Slack U0RELMGR01)"}
UI_USER = {"id": "7", "name": "alice"}


def answer(options: list[str], user: dict | None, **extra) -> dict:
    return {"chosen_options": options, "responded_by_user": user, "params_input": {}, **extra}


@pytest.mark.parametrize(("event", "expected"), [
    (answer(["Approve"], SLACK_USER), ("approved", "slack:U0RELMGR01", "slack")),
    (answer(["Approve"], UI_USER), ("approved", "alice", "airflow")),
    (answer(["Reject"], SLACK_USER), ("rejected", "slack:U0RELMGR01", "slack")),
    (answer(["Reject"], None, timedout=True), ("timed_out", "system", "system")),
    ({"error": "The timeout has passed", "error_type": "timeout"}, ("timed_out", "system", "system")),
    ({"error": "bad params", "error_type": "validation"}, ("refused", "system", "system")),
    ({"superseded": "SLO error_rate failed 2 of 2 checks"}, ("superseded", "system", "system")),
])
def test_decisions(event, expected):
    decision = decision_of(event, triggered_by="bob")
    assert (decision.decision, decision.decided_by, decision.channel) == expected
    assert decision.approved is (expected[0] == "approved")


def test_the_trigger_approving_in_the_ui_is_refused_but_may_reject():
    refused = decision_of(answer(["Approve"], {"id": "3", "name": "bob"}), triggered_by="bob")
    assert (refused.decision, refused.approved) == ("refused", False)
    assert "four eyes: bob triggered this release" in refused.detail
    assert decision_of(answer(["Reject"], {"id": "3", "name": "bob"}), triggered_by="bob").decision == "rejected"
