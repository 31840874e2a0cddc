"""Slack users clicking the release's Approve / Reject buttons: signed requests like Slack's, sent to the real
callback plugin app."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sap_llm_release.ledger import Ledger

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "slack_approvals.py"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
RELEASE_MANAGER = "U0RELMGR01"
SLACK_TEAM = "T0SAPLLM01"  # the spec's slack_team: the workspace whose clicks may answer


def load_plugin() -> Any:
    module_spec = importlib.util.spec_from_file_location("slack_approvals", PLUGIN)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def click_body(release_id: str, approval: str, action: str = "approve", user: str = RELEASE_MANAGER,
               response_url: str = "", value: str | None = None, team: str | None = SLACK_TEAM,
               trigger_id: str = "") -> bytes:
    """A ``block_actions`` payload as Slack sends it for a button click (``team=None`` leaves the team out)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), **({"team_id": team} if team else {})},
        **({"team": {"id": team, "domain": "sap-llm"}} if team else {}),
        **({"trigger_id": trigger_id} if trigger_id else {}),
        "actions": [{"action_id": action,
                     "value": value or json.dumps({"release_id": release_id, "approval": approval})}],
        "container": {"channel_id": "C0RELEASES", "message_ts": "1700000000.000001"},
        "response_url": response_url,
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/x-www-form-urlencoded"}


class SlackClicker:
    """Posts clicks to the plugin's ``/interactions`` through its FastAPI app."""

    def __init__(self, response_url: str = "") -> None:
        from fastapi.testclient import TestClient

        self.client = TestClient(load_plugin().slack_app)
        self.response_url = response_url

    def post(self, body: bytes, headers: dict[str, str]) -> Any:
        return self.client.post("/interactions", content=body, headers=headers)

    def click(self, release_id: str, approval: str, action: str = "approve", user: str = RELEASE_MANAGER) -> Any:
        body = click_body(release_id, approval, action, user, self.response_url)
        return self.post(body, signed(body))


class Approver(threading.Thread):
    """Answers each approval a release opens, once Airflow's HITL record exists and a short settle passed:
    ``answers`` maps an approval name to ``(action, slack_user)``; an approval not named is left pending.
    ``on_open`` runs first for the approvals it names (given the ledger's request row); what it raises is kept in
    ``errors`` for the test to report."""

    def __init__(self, ledger: Ledger, clicker: SlackClicker, answers: dict[str, tuple[str, str]],
                 on_open: dict[str, Callable[[dict], None]] | None = None, settle_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.ledger, self.clicker, self.answers, self.settle_s = ledger, clicker, answers, settle_s
        self.on_open = on_open or {}
        self.errors: list[BaseException] = []
        self.replies: list[tuple[str, str, dict]] = []
        self.opened: list[str] = []
        self._done = threading.Event()
        self._since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))

    def run(self) -> None:
        done: set[tuple[str, str, int]] = set()
        while not self._done.wait(0.25):
            for row in self.ledger.approval_requests_opened_since(self._since):
                key = (row["release_id"], row["approval"], row["try_number"])
                if key in done:
                    continue
                done.add(key)
                self.opened.append(row["approval"])
                time.sleep(self.settle_s)
                if hook := self.on_open.get(row["approval"]):
                    try:
                        hook(row)
                    except BaseException as exc:  # noqa: BLE001 - reported by the test after the run
                        self.errors.append(exc)
                if row["approval"] not in self.answers:
                    continue
                action, user = self.answers[row["approval"]]
                reply = self.clicker.click(row["release_id"], row["approval"], action, user)
                self.replies.append((row["approval"], action, reply.json()))

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
