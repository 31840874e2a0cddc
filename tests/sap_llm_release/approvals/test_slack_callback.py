"""The Slack callback's checks, in the order the endpoint runs them: size, timestamp, signature, payload, user."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest

from sap_llm_release.approvals.slack_callback import (
    MAX_BODY_BYTES,
    Refusal,
    authorise,
    parse,
    request_digest,
    verify,
)
from sap_llm_release.notify.slack import approval_blocks
from sap_llm_release.spec import Approval

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
RELEASE = "sap_llm_release:manual__2026-11-26"
APPROVAL = Approval(name="go_live", before="full_traffic", description="send 100 % to green",
                    approvers=["U0APPROVER", "U0TRIGGER"], timeout="30m")


def click(action_id: str = "approve", user: str = "U0APPROVER", value: dict | None = None) -> bytes:
    blocks = approval_blocks(RELEASE, "go_live", "send 100 % to green", "1.1.0", ["smoke passed"], "http://run")
    button = next(b for b in blocks[2]["elements"] if b["action_id"] == action_id)
    payload = {"type": "block_actions", "user": {"id": user, "username": "sam"},
               "actions": [{"action_id": action_id, "value": json.dumps(value) if value else button["value"]}],
               "container": {"channel_id": "C0RELEASES", "message_ts": "1700000000.000002"},
               "response_url": "https://hooks.slack.test/actions/1"}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


def test_a_signed_click_parses_into_a_decision():
    body = click()
    verify(body, signed(body), SECRET)
    interaction = parse(body)
    assert (interaction.release_id, interaction.approval, interaction.decision) == (RELEASE, "go_live", "approved")
    assert (interaction.slack_user, interaction.channel, interaction.message_ts) == (
        "U0APPROVER", "C0RELEASES", "1700000000.000002")
    assert parse(click("reject")).decision == "rejected"


@pytest.mark.parametrize(("headers", "status", "message"), [
    (lambda body: signed(body, secret="another-secret"), 401, "invalid Slack signature"),
    (lambda body: signed(body, timestamp=int(time.time()) - 301), 401, "stale request"),
    (lambda body: {"X-Slack-Signature": "v0=00"}, 401, "missing or malformed X-Slack-Request-Timestamp"),
    (lambda body: {**signed(body), "X-Slack-Signature": "v0=" + "0" * 64}, 401, "invalid Slack signature"),
])
def test_unsigned_or_stale_requests_are_refused(headers, status, message):
    body = click()
    with pytest.raises(Refusal, match=message) as refused:
        verify(body, headers(body), SECRET)
    assert refused.value.status == status


def test_an_oversized_body_is_refused_before_anything_else():
    body = b"payload=" + b"x" * MAX_BODY_BYTES
    with pytest.raises(Refusal, match="over 65536 bytes") as refused:
        verify(body, {}, SECRET)
    assert refused.value.status == 413


@pytest.mark.parametrize("body", [
    b"not a form", b"payload=not-json", urlencode({"payload": json.dumps({"type": "block_actions"})}).encode(),
    click(value={"release_id": RELEASE}),  # no approval named
    click(action_id="approve").replace(b"approve", b"maybe"),
])
def test_malformed_payloads_are_refused(body):
    with pytest.raises(Refusal, match="malformed interaction payload") as refused:
        parse(body)
    assert refused.value.status == 400


def test_only_listed_approvers_may_answer():
    with pytest.raises(Refusal, match="<@U0STRANGER> may not answer go_live") as refused:
        authorise(parse(click(user="U0STRANGER")), APPROVAL, set(), "U0TRIGGER", None)
    assert refused.value.status == 403
    authorise(parse(click(user="U0GROUPMEMBER")), APPROVAL, {"U0GROUPMEMBER"}, "U0TRIGGER", None)


def test_four_eyes_the_trigger_may_reject_but_not_approve():
    with pytest.raises(Refusal, match="triggered this release and may not approve it"):
        authorise(parse(click(user="U0TRIGGER")), APPROVAL, set(), "U0TRIGGER", None)
    authorise(parse(click("reject", user="U0TRIGGER")), APPROVAL, set(), "U0TRIGGER", None)


def test_a_second_answer_is_refused():
    with pytest.raises(Refusal, match="already answered: approved by U0OTHER") as refused:
        authorise(parse(click()), APPROVAL, set(), "U0TRIGGER", "approved by U0OTHER")
    assert refused.value.status == 409


def test_a_replay_has_the_same_digest_and_a_new_signature_does_not():
    body = click()
    headers = signed(body, timestamp=1_800_000_000)
    assert request_digest(body, headers) == request_digest(body, dict(headers))
    assert request_digest(body, headers) != request_digest(body, signed(body, timestamp=1_800_000_001))
