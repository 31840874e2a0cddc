"""A Slack interactivity request (an Approve / Reject button click) turned into a checked decision.

Order matters: the body's size and the signature (``slack_sdk``'s SignatureVerifier, HMAC-SHA256 with the signing
secret, timestamps older than five minutes refused) are checked before a single byte of the payload is parsed,
because the endpoint has no other authentication. Then the payload's shape, then who clicked.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from sap_llm_release.spec import Approval

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


def verify(body: bytes, headers: Mapping[str, str], signing_secret: str, now: float | None = None) -> str:
    """Refuse an oversized body, a missing or stale timestamp, a bad signature; return the Slack timestamp."""
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
    return timestamp


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
