"""A Slack interactivity request (an Approve / Reject button click) turned into a checked decision.

Order matters: the body's size and the signature (``slack_sdk``'s SignatureVerifier, HMAC-SHA256 with the signing
secret, timestamps older than five minutes refused) are checked before a single byte of the payload is parsed,
because the endpoint has no other authentication. Then the payload's shape, then who clicked.
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

from sap_llm_release.ledger import Writer
from sap_llm_release.spec import Approval, ReleaseSpec

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_AGE_S = 5 * 60
DECISIONS = {"approve": "approved", "reject": "rejected"}


class Refusal(Exception):
    """A request that resolves nothing: ``message`` goes back to Slack, ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


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
            response_url=str(payload.get("response_url", "")),
        )
    except (UnicodeDecodeError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise Refusal(400, f"malformed interaction payload: {type(exc).__name__}: {exc}") from None


def authorise(interaction: Interaction, approval: Approval, group_members: set[str], triggered_by_slack: str | None,
              prior_decision: str | None) -> None:
    """An allowed approver, the first answer, and no approval by the person who triggered the release (four eyes;
    rejecting one's own release is the safe direction and allowed)."""
    if prior_decision is not None:
        raise Refusal(409, f"{approval.name} was already answered: {prior_decision}")
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
    """Checks each Slack callback in order and resolves the approval only when every check passed. Every request
    is recorded once in ``slack_interactions`` (its digest is the replay key); a replay and a refusal from Airflow
    itself are recorded in ``approvals``."""

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
            if self.ledger.rows("SELECT 1 FROM slack_interactions WHERE request_sha256 = :d", d=digest):
                self._record_refusal(interaction, "replayed request: this exact request was received before")
                return Reply(409, "replayed request: this exact request was received before", interaction)
            request = self._check(interaction)
        except Refusal as refusal:
            log.warning("slack callback refused (%s): %s", refusal.status, refusal.message)
            self._record(digest, headers, "refused", refusal.message, interaction)
            return Reply(refusal.status, refusal.message, interaction)
        if not self._record(digest, headers, "accepted", f"{interaction.decision} by {interaction.slack_user}",
                            interaction):
            return Reply(409, "replayed request: this exact request was received before", interaction)
        try:
            self.airflow.resolve(request, interaction)
        except Refusal as refusal:
            self._record_refusal(interaction, refusal.message, request)
            return Reply(refusal.status, refusal.message, interaction)
        verb = "Approved" if interaction.decision == "approved" else "Rejected"
        return Reply(200, f"{verb}: {interaction.approval} of {interaction.release_id}", interaction)

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
        authorise(interaction, approval, members, trigger_slack, self.airflow.answer(request))
        return request

    def _triggered_by(self, release_id: str) -> str:
        rows = self.ledger.rows("SELECT triggered_by FROM releases WHERE release_id = :r", r=release_id)
        return rows[0]["triggered_by"] if rows else ""

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
            decided_by=f"slack:{interaction.slack_user}", channel="slack", detail=detail,
            writer=Writer(request["dag_id"], request["run_id"], request["task_id"], request["try_number"]),
        )
