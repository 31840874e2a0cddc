"""A Slack interactivity request (an Approve / Reject button click) turned into a checked decision.

Order matters: the body's size and the signature (``slack_sdk``'s SignatureVerifier, HMAC-SHA256 with the signing
secret, timestamps older than five minutes refused) are checked before a single byte of the payload is parsed,
because the endpoint has no other authentication. Then the payload's shape, the Slack workspace, then who clicked.

Several people may click at the same moment. Exactly one answer decides: a click first claims the approval request in
the ledger (``approval_claims``: one insert against its primary key, atomic on SQLite and on PostgreSQL), and only
the holder of the claim writes its answer to Airflow. Every other click is told who decided and how, and recorded as
refused. Airflow's own answer path (the UI, the timeout) does not go through the claim, so what a person is told
is derived from what Airflow holds whenever it holds an answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from sap_llm_release.approvals.decision import APPROVE, REJECT, SLACK_USER_PREFIX
from sap_llm_release.ledger import Writer
from sap_llm_release.spec import Approval, ReleaseSpec

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_S = 5 * 60
DECISIONS = {"approve": "approved", "reject": "rejected"}
REPLAYED = "replayed request: this exact request was received before"


class Refusal(Exception):
    """A request that resolves nothing: ``message`` goes back to Slack, ``status`` is the HTTP status. ``late``: the
    approval was answered by another before this click, which is then also recorded as refused in ``approvals``."""

    def __init__(self, status: int, message: str, late: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.late = status, message, late


class Replayed(Refusal):
    """This exact request (same signature, same body) was received before: its first arrival is the one recorded
    in ``slack_interactions``."""

    def __init__(self) -> None:
        super().__init__(409, REPLAYED, late=True)


@dataclass(frozen=True)
class Interaction:
    release_id: str
    approval: str
    decision: str  # approved | rejected
    slack_user: str
    slack_user_name: str
    channel: str
    message_ts: str
    response_url: str
    team_id: str = ""  # the Slack workspace the click came from (payload.team.id); "" when the payload names none

    @property
    def responder(self) -> str:
        """The Slack user as Airflow records the answer's responder."""
        return f"{self.slack_user_name or self.slack_user} (Slack {self.slack_user})"

    @property
    def answer(self) -> str:
        """This click's answer as Airflow shows a recorded one (``Approve by sam (Slack U...)``)."""
        return f"{APPROVE if self.decision == 'approved' else REJECT} by {self.responder}"


def request_digest(body: bytes, headers: Mapping[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    signed = f"{lowered.get('x-slack-request-timestamp', '')}:{lowered.get('x-slack-signature', '')}:".encode()
    return hashlib.sha256(signed + body).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float | None = None) -> None:
    """Refuse an oversized body, a missing or stale timestamp, a bad signature."""
    from slack_sdk.signature import SignatureVerifier

    if len(body) > MAX_BODY_BYTES:
        raise Refusal(413, f"request body over {MAX_BODY_BYTES} bytes")
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp", "")
    if not timestamp.isdigit():
        raise Refusal(401, "missing or malformed X-Slack-Request-Timestamp")
    if abs((now if now is not None else time.time()) - int(timestamp)) > MAX_AGE_S:
        raise Refusal(401, "stale request: timestamp older than 5 minutes")
    verifier = SignatureVerifier(signing_secret)
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=lowered.get("x-slack-signature")):
        raise Refusal(401, "invalid Slack signature")


def parse(body: bytes) -> Interaction:
    """The button click in a ``block_actions`` payload; anything else is malformed."""
    try:
        form = parse_qs(body.decode(), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        action = payload["actions"][0]
        value = json.loads(action["value"])
        decision = DECISIONS[action["action_id"]]
        return Interaction(
            release_id=str(value["release_id"]), approval=str(value["approval"]), decision=decision,
            slack_user=str(payload["user"]["id"]), slack_user_name=str(payload["user"].get("username", "")),
            channel=str(payload["container"]["channel_id"]), message_ts=str(payload["container"]["message_ts"]),
            response_url=str(payload.get("response_url", "")), team_id=_team_id(payload),
        )
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise Refusal(400, f"malformed interaction payload: {type(exc).__name__}: {exc}") from None


def _team_id(payload: Mapping[str, Any]) -> str:
    team = payload.get("team")
    return str(team.get("id") or "")[:64] if isinstance(team, Mapping) else ""


def check_workspace(interaction: Interaction, slack_team: str | None) -> None:
    """Only a click from the spec's Slack workspace may answer: a user ID means nothing in another workspace."""
    if slack_team is None:
        raise Refusal(403, "the release spec names no Slack workspace (slack_team): no click may answer")
    if not interaction.team_id:
        raise Refusal(403, f"the click names no Slack workspace (team.id); only {slack_team} may answer")
    if interaction.team_id != slack_team:
        named = repr(interaction.team_id) if interaction.team_id.isalnum() else "an unrecognised one"
        raise Refusal(403, f"the click comes from Slack workspace {named}, not the release's workspace {slack_team}")


def prior_answer(claim: Mapping[str, Any] | None, airflow_answer: str | None) -> str | None:
    """Who decided and how, for a click that came later: a person's claim only counts as far as Airflow took it
    (Airflow's record wins where it holds an answer); a claim from the approval's resume (timeout, SLO breach) is
    what Airflow delivered."""
    if claim is None:
        return airflow_answer
    if claim["channel"] == "system":
        return str(claim["answer"])
    return airflow_answer or str(claim["answer"])


def authorise(interaction: Interaction, approval: Approval, group_members: set[str], triggered_by_slack: str | None,
              prior_decision: str | None) -> None:
    """An allowed approver, the first answer, and no approval by the person who triggered the release (four eyes;
    rejecting one's own release is the safe direction and allowed)."""
    if prior_decision is not None:
        raise Refusal(409, f"{approval.name} was already answered: {prior_decision}", late=True)
    if interaction.slack_user not in set(approval.approvers) | group_members:
        raise Refusal(403, f"<@{interaction.slack_user}> may not answer {approval.name}")
    if interaction.decision == "approved" and interaction.slack_user == triggered_by_slack:
        raise Refusal(403, f"<@{interaction.slack_user}> triggered this release and may not approve it (four eyes)")


@dataclass(frozen=True)
class Reply:
    """What the endpoint answers: the HTTP status, and the text shown to the clicking user (ephemeral)."""

    status: int
    text: str
    interaction: Interaction | None = None


class Airflow(Protocol):
    """The HITL task behind an approval request, as the callback sees it."""

    def answer(self, request: Mapping[str, Any]) -> str | None:
        """The answer already recorded for the request's task instance, or None while it waits."""

    def resolve(self, request: Mapping[str, Any], interaction: Interaction) -> None:
        """Record the decision on the task instance (Airflow's HITL PATCH); raise :class:`Refusal` when Airflow
        refuses it."""


@dataclass
class CallbackDesk:
    """Checks each Slack callback in order and resolves the approval only when every check passed and the click
    holds the approval's claim. Every request is recorded once in ``slack_interactions`` (its digest is the replay
    key) with its outcome; a replay and a click that came after another answer are also recorded in ``approvals``."""

    ledger: Any
    spec: ReleaseSpec
    signing_secret: str
    airflow: Airflow
    group_members: Callable[[str], set[str]]
    now: Callable[[], float] = time.time

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        digest = request_digest(body, headers)
        interaction: Interaction | None = None
        try:
            verify(body, headers, self.signing_secret, now=self.now())
            interaction = parse(body)
            check_workspace(interaction, self.spec.slack_team)
            if self.ledger.slack_request_seen(digest):
                raise Replayed()
            request = self._check(interaction)
            self._answer(request, interaction, digest)
        except Refusal as refusal:
            log.warning("slack callback refused (%s): %s", refusal.status, refusal.message)
            if refusal.late and interaction is not None:
                self._record_refusal(interaction, refusal.message)
            if not isinstance(refusal, Replayed) and not self._record(digest, headers, "refused", refusal.message,
                                                                      interaction):
                return Reply(409, REPLAYED, interaction)
            return Reply(refusal.status, refusal.message, interaction)
        self._record(digest, headers, "accepted", f"{interaction.decision} by {interaction.slack_user}", interaction)
        verb = "Approved" if interaction.decision == "approved" else "Rejected"
        return Reply(200, f"{verb}: {interaction.approval} of {interaction.release_id}", interaction)

    def _answer(self, request: Mapping[str, Any], interaction: Interaction, digest: str) -> None:
        """Claim the approval request, then write the answer to Airflow; raise a late :class:`Refusal` naming who
        decided when another answer holds the claim or Airflow already holds one."""
        won, claim = self.ledger.claim_approval(
            interaction.release_id, approval=interaction.approval, try_number=request["try_number"],
            decision=interaction.decision, decided_by=f"{SLACK_USER_PREFIX}{interaction.slack_user}",
            channel="slack", answer=interaction.answer, request_sha256=digest,
        )
        if not won:
            if claim["request_sha256"] == digest:  # the same request arriving twice at once
                raise Replayed()
            prior = prior_answer(claim, self.airflow.answer(request))
            raise Refusal(409, f"{interaction.approval} was already answered: {prior}", late=True)
        try:
            self.airflow.resolve(request, interaction)
        except Refusal as refusal:  # answered in the UI or closed by the timeout just before
            prior = self.airflow.answer(request)
            message = f"{interaction.approval} was already answered: {prior}" if prior else refusal.message
            raise Refusal(409 if prior else refusal.status, message, late=True) from None
        except Exception as exc:  # noqa: BLE001 - Airflow unreachable: say so, the claim is on record
            log.exception("could not write the answer to Airflow")
            raise Refusal(503, f"the answer could not be written to Airflow ({type(exc).__name__}); answer "
                               f"{interaction.approval} in the Airflow UI", late=True) from None

    def _check(self, interaction: Interaction) -> Mapping[str, Any]:
        request = self.ledger.approval_request(interaction.release_id, interaction.approval)
        if request is None:
            raise Refusal(404, f"no approval {interaction.approval} was opened for release {interaction.release_id}")
        try:
            approval = self.spec.approval(interaction.approval)
        except KeyError:
            raise Refusal(404, f"approval {interaction.approval} is not in the release spec") from None
        members = set()
        if approval.approver_group and interaction.slack_user not in approval.approvers:
            try:
                members = self.group_members(approval.approver_group)
            except Exception as exc:  # noqa: BLE001 - any Slack failure: membership unknown, nobody is let in
                raise Refusal(503, f"cannot read Slack user group {approval.approver_group}: {exc}") from None
        triggered_by = self._triggered_by(interaction.release_id)
        trigger_slack = self.spec.people.get(triggered_by)
        if interaction.decision == "approved" and trigger_slack is None:
            raise Refusal(403, f"four eyes cannot be checked: the release was triggered by {triggered_by!r}, who has "
                               "no Slack user in the spec's people; approve in the Airflow UI")
        claim = self.ledger.approval_claim(interaction.release_id, interaction.approval, request["try_number"])
        authorise(interaction, approval, members, trigger_slack, prior_answer(claim, self.airflow.answer(request)))
        return request

    def _triggered_by(self, release_id: str) -> str:
        release = self.ledger.release(release_id)
        return release["triggered_by"] if release else ""

    def _record(self, digest: str, headers: Mapping[str, str], outcome: str, detail: str,
                interaction: Interaction | None) -> bool:
        lowered = {k.lower(): v for k, v in headers.items()}
        return self.ledger.record_slack_interaction(
            request_sha256=digest, slack_timestamp=lowered.get("x-slack-request-timestamp", "")[:32],
            outcome=outcome, detail=detail[:2000],
            release_id=interaction.release_id if interaction else None,
            approval=interaction.approval if interaction else None,
            slack_user=interaction.slack_user if interaction else None,
        )

    def _record_refusal(self, interaction: Interaction, detail: str,
                        request: Mapping[str, Any] | None = None) -> None:
        request = request or self.ledger.approval_request(interaction.release_id, interaction.approval)
        if request is None:
            return
        self.ledger.record_approval(
            interaction.release_id, gate=interaction.approval, decision="refused",
            decided_by=f"{SLACK_USER_PREFIX}{interaction.slack_user}", channel="slack", detail=detail,
            writer=Writer(request["dag_id"], request["run_id"], request["task_id"], request["try_number"]),
        )
