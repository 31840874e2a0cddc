"""Slack messages of a release: one thread per release, Block Kit, through ``slack_sdk``'s WebClient."""

from __future__ import annotations

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
