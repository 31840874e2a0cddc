"""Slack messages of a release: one thread per release, Block Kit, through ``slack_sdk``'s WebClient."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SlackMessage:
    channel: str
    ts: str


class SlackChannel:
    """A channel the release posts to; ``client`` is a ``slack_sdk.WebClient`` (its ``base_url`` decides where)."""

    def __init__(self, client: Any, channel: str) -> None:
        self.client, self.channel = client, channel

    def post(self, text: str, blocks: list[dict] | None = None, thread_ts: str | None = None) -> SlackMessage:
        response = self.client.chat_postMessage(channel=self.channel, text=text, blocks=blocks, thread_ts=thread_ts)
        return SlackMessage(response["channel"], response["ts"])

    def update(self, message: SlackMessage, text: str, blocks: list[dict] | None = None) -> None:
        self.client.chat_update(channel=message.channel, ts=message.ts, text=text, blocks=blocks)


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def release_started_blocks(release_id: str, service: str, version: str, environment: str, triggered_by: str,
                           run_url: str) -> list[dict]:
    return [
        section(f"*Release of {service} {version} to {environment} started* by {triggered_by}"),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{release_id}` · <{run_url}|Airflow run>"}]},
    ]


def approval_blocks(release_id: str, approval: str, description: str, version: str, evidence: list[str],
                    run_url: str) -> list[dict]:
    """The approval request: what is approved, the evidence so far, and Approve / Reject buttons whose value names
    the release and the approval (the callback reads nothing else from the message)."""
    value = json.dumps({"release_id": release_id, "approval": approval})
    return [
        section(f"*Approval needed: {description}* ({version})"),
        section("\n".join(f"• {line}" for line in evidence) or "no evidence recorded yet"),
        {"type": "actions", "block_id": f"approval:{approval}", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{release_id}` · <{run_url}|Airflow run>"}]},
    ]



def approval_closed_blocks(text: str) -> list[dict]:
    """The approval message once decided: the decision, no buttons left to click."""
    return [section(text)]
