"""Slack messages of a release: one thread per release, Block Kit, through ``slack_sdk``'s WebClient.

Every text here is Slack mrkdwn, where ``<...>`` is a mention, a link or a command such as ``<!channel>``. Whatever
did not come from this module's own markup (a name a person typed, a version, a detail) goes in through
:func:`escape`, so no input can ping a channel, mention someone or dress up a link."""

from __future__ import annotations

import json
import re
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


_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def escape(text: str) -> str:
    """Slack's three control characters as the entities Slack asks for: typed text stays text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(slack_user: str) -> str:
    """A mention of a Slack user ID (``U…``/``W…``); anything else is shown as escaped text."""
    return f"<@{slack_user}>" if _SLACK_USER_ID.match(slack_user) else escape(slack_user)


def link(url: str, label: str) -> str:
    """A link whose URL cannot end the markup early (``|`` and ``>`` percent-encoded) and whose label is text."""
    safe_url = url.replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe_url}|{escape(label)}>"


def approval_closed_text(approval: str, decision: str, decided_by: str, channel: str, detail: str, when: str) -> str:
    """The line that replaces an approval's buttons: who decided (a mention when it was a Slack user) and how."""
    who = mention(decided_by.removeprefix("slack:")) if channel == "slack" else escape(decided_by)
    return (f"*{escape(approval)}: {escape(decision.replace('_', ' '))}* by {who} ({escape(channel)}) at "
            f"{escape(when)}: {escape(detail)}")


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def release_started_blocks(release_id: str, service: str, version: str, environment: str, triggered_by: str,
                           run_url: str) -> list[dict]:
    return [
        section(f"*Release of {escape(service)} {escape(version)} to {escape(environment)} started* by "
                f"{escape(triggered_by)}"),
        _run_context(release_id, run_url),
    ]


def approval_blocks(release_id: str, approval: str, description: str, version: str, evidence: list[str],
                    run_url: str) -> list[dict]:
    """The approval request: what is approved, the evidence so far, and Approve / Reject buttons whose value names
    the release and the approval (the callback reads nothing else from the message)."""
    value = json.dumps({"release_id": release_id, "approval": approval})
    return [
        section(f"*Approval needed: {escape(description)}* ({escape(version)})"),
        section("\n".join(f"• {escape(line)}" for line in evidence) or "no evidence recorded yet"),
        {"type": "actions", "block_id": f"approval:{approval}", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "reject", "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}},
        ]},
        _run_context(release_id, run_url),
    ]


def _run_context(release_id: str, run_url: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": f"`{escape(release_id)}` · "
                                                                       f"{link(run_url, 'Airflow run')}"}]}


def approval_closed_blocks(text: str) -> list[dict]:
    """The approval message once decided: the decision, no buttons left to click."""
    return [section(text)]
