"""The callback desk over a real ledger, with Airflow's HITL record played by a stand-in that checks and writes
without a lock (as Airflow's own PATCH does): exactly one click may write its answer, whatever arrives at once; the
workspace is checked before anything is resolved."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sap_llm_release.approvals.slack_callback import CallbackDesk, Refusal, check_workspace, parse, prior_answer
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.spec import load_spec
from tests.support.approvals import SIGNING_SECRET, SLACK_TEAM, click_body, signed
from tests.support.ledgers import ledger_with_release

SPEC = load_spec(Path(__file__).resolve().parents[3] / "specs" / "sap_llm.yaml")
RELEASE = "sap_llm_release:manual__2026-11-30"
WRITER = Writer("sap_llm_release", "manual__2026-11-30", "traffic_shift.approve_first_shift_go", 1)


class HITLStandIn:
    """One HITL record: ``answer`` reads it, ``resolve`` checks it is unanswered, waits a little, then writes."""

    def __init__(self) -> None:
        self.held: str | None = None
        self.writes: list[str] = []

    def answer(self, request: dict) -> str | None:
        return self.held

    def resolve(self, request: dict, interaction) -> None:
        if self.held is not None:
            raise Refusal(409, "Airflow refused the answer: already updated")
        time.sleep(0.05)
        self.held = interaction.answer
        self.writes.append(interaction.answer)


@pytest.fixture
def ledger(tmp_path):
    store = ledger_with_release(tmp_path, RELEASE, WRITER, triggered_by="admin")
    store.record_approval_request(RELEASE, approval="first_shift_go", point="first_shift", map_index=-1,
                                  slack_channel=None, slack_ts=None, evidence=[], deadline="2026-12-01", writer=WRITER)
    return store


def desk(ledger: Ledger, airflow: HITLStandIn) -> CallbackDesk:
    return CallbackDesk(ledger=ledger, spec=SPEC, signing_secret=SIGNING_SECRET, airflow=airflow,
                        group_members=lambda group: set())


def click(ledger, airflow, action="approve", user="U0RELMGR01", team=SLACK_TEAM, trigger_id=""):
    body = click_body(RELEASE, "first_shift_go", action, user, team=team, trigger_id=trigger_id)
    return desk(ledger, airflow).handle(body, signed(body))


def outcomes(ledger: Ledger) -> list[tuple[str, str]]:
    return [(row["slack_user"], row["outcome"]) for row in ledger.slack_interactions()]


def test_racing_clicks_one_writes_the_rest_are_told_who_decided(ledger):
    airflow = HITLStandIn()
    users = [("approve", "U0RELMGR01"), ("reject", "U0MLLEAD01")] * 4
    barrier, replies = threading.Barrier(len(users)), []

    def one(index: int) -> None:
        action, user = users[index]
        body = click_body(RELEASE, "first_shift_go", action, user, trigger_id=f"t{index}")
        headers = signed(body)
        barrier.wait()
        replies.append(desk(ledger, airflow).handle(body, headers))

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(airflow.writes) == 1, airflow.writes  # the stand-in would have taken every write that reached it
    (winner,) = [reply for reply in replies if reply.status == 200]
    assert airflow.held == winner.interaction.answer
    losers = [reply for reply in replies if reply.status != 200]
    assert len(losers) == len(users) - 1
    assert {(r.status, r.text) for r in losers} == {(409, f"first_shift_go was already answered: {airflow.held}")}
    assert sorted(o for _, o in outcomes(ledger)) == ["accepted"] + ["refused"] * (len(users) - 1)
    claim = ledger.approval_claim(RELEASE, "first_shift_go", 1)
    assert (claim["decided_by"], claim["answer"]) == (f"slack:{winner.interaction.slack_user}", airflow.held)
    refused = [row for row in ledger.release_record(RELEASE)["approvals"] if row["decision"] == "refused"]
    assert {row["decided_by"] for row in refused} == {f"slack:{r.interaction.slack_user}" for r in losers}


def test_airflow_answered_between_the_check_and_the_write_decides_the_reply(ledger):
    """The UI (or the timeout) answered after this click's checks but before its write: Airflow refuses the write,
    and the click is told what Airflow holds."""

    class AnsweredMeanwhile(HITLStandIn):
        def resolve(self, request, interaction):
            self.held = "Approve by alice"  # the Required Actions page, a moment earlier
            super().resolve(request, interaction)

    airflow = AnsweredMeanwhile()
    reply = click(ledger, airflow, "reject", "U0MLLEAD01")
    assert (reply.status, reply.text) == (409, "first_shift_go was already answered: Approve by alice")
    assert outcomes(ledger) == [("U0MLLEAD01", "refused")]
    (row,) = ledger.release_record(RELEASE)["approvals"]
    assert (row["decision"], row["detail"]) == ("refused", reply.text)
    # a later click is told Airflow's answer too, not the claim Airflow refused
    assert click(ledger, airflow, "approve", "U0RELMGR01").text == reply.text


def test_a_click_after_a_timeout_or_breach_is_told_what_decided(ledger):
    ledger.claim_approval(RELEASE, approval="first_shift_go", try_number=1, decision="superseded",
                          decided_by="system", channel="system",
                          answer="superseded by the SLO analysis: SLO error_rate failed 2 of 2 checks")
    airflow = HITLStandIn()
    airflow.held = "Reject by the timeout"  # what Airflow's record shows for a breach (the default, no responder)
    reply = click(ledger, airflow)
    assert (reply.status, reply.text) == (
        409, "first_shift_go was already answered: superseded by the SLO analysis: SLO error_rate failed 2 of 2 checks")
    assert airflow.writes == [] and outcomes(ledger) == [("U0RELMGR01", "refused")]


@pytest.mark.parametrize(("team", "message"), [
    ("T0ELSEWHERE", "the click comes from Slack workspace 'T0ELSEWHERE', not the release's workspace T0SAPLLM01"),
    (None, "the click names no Slack workspace (team.id); only T0SAPLLM01 may answer"),
    ("<!channel>", "the click comes from Slack workspace an unrecognised one, not the release's workspace T0SAPLLM01"),
])
def test_a_click_from_another_workspace_is_refused_before_anything_is_resolved(ledger, team, message):
    airflow = HITLStandIn()
    reply = click(ledger, airflow, team=team)
    assert (reply.status, reply.text) == (403, message)
    assert airflow.writes == [] and ledger.approval_claim(RELEASE, "first_shift_go", 1) is None
    (row,) = ledger.slack_interactions()
    assert (row["outcome"], row["detail"], row["slack_user"]) == ("refused", message, "U0RELMGR01")
    assert click(ledger, airflow).status == 200  # the same person from the release's workspace answers


def test_check_workspace_without_a_workspace_in_the_spec_refuses_every_click():
    interaction = parse(click_body(RELEASE, "first_shift_go"))
    assert interaction.team_id == SLACK_TEAM
    check_workspace(interaction, SLACK_TEAM)
    with pytest.raises(Refusal, match="names no Slack workspace \\(slack_team\\)") as refused:
        check_workspace(interaction, None)
    assert refused.value.status == 403


def test_prior_answer_prefers_airflow_over_a_persons_claim_but_not_over_the_resume():
    slack = {"channel": "slack", "answer": "Reject by sam (Slack U0MLLEAD01)"}
    system = {"channel": "system", "answer": "no answer within the timeout: counted as a rejection"}
    assert prior_answer(None, None) is None
    assert prior_answer(None, "Approve by alice") == "Approve by alice"
    assert prior_answer(slack, None) == slack["answer"]  # the holder is still writing to Airflow
    assert prior_answer(slack, "Approve by alice") == "Approve by alice"
    assert prior_answer(system, "Reject by the timeout") == system["answer"]
