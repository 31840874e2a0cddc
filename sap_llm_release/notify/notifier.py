"""Every transition of a release told to Slack (one thread) and, when it is trouble, to PagerDuty; each attempt
recorded in the ledger. Nothing here raises: a notification that cannot be delivered is recorded as failed."""

from __future__ import annotations

import json

from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.notify.delivery import Delivery, deliver
from sap_llm_release.notify.pagerduty import Pager, dedup_key
from sap_llm_release.notify.slack import (
    SlackChannel,
    SlackMessage,
    approval_blocks,
    approval_closed_blocks,
    escape,
    release_started_blocks,
)

THREAD_KIND = "release_started"


class ReleaseNotifier:
    def __init__(self, ledger: Ledger, release_id: str, writer: Writer, slack: SlackChannel | None = None,
                 pager: Pager | None = None, backoff_s: float = 0.5) -> None:
        self.ledger, self.release_id, self.writer = ledger, release_id, writer
        self.slack, self.pager, self.backoff_s = slack, pager, backoff_s

    def _record(self, channel: str, kind: str, delivery: Delivery, detail: str) -> None:
        self.ledger.record_notification(
            self.release_id, channel=channel, kind=kind, dedup_key=f"{self.release_id}:{kind}",
            status="sent" if delivery.ok else "failed",
            detail=detail if delivery.ok else f"{detail}; {delivery.detail}", writer=self.writer,
        )

    def _thread(self) -> SlackMessage | None:
        opened = [row for row in self.ledger.sent_notifications(self.release_id, "slack") if row["kind"] == THREAD_KIND]
        return SlackMessage(**json.loads(opened[0]["detail"])) if opened else None

    def started(self, service: str, version: str, environment: str, triggered_by: str, run_url: str) -> None:
        """Open the release's Slack thread (once: a retried task reuses it)."""
        if self.slack is None or self._thread() is not None:
            return
        text = escape(f"Release of {service} {version} to {environment} started by {triggered_by}")
        blocks = release_started_blocks(self.release_id, service, version, environment, triggered_by, run_url)
        delivery = deliver(lambda: self.slack.post(text, blocks), f"slack {THREAD_KIND}", backoff_s=self.backoff_s)
        detail = json.dumps(delivery.value.__dict__) if delivery.ok else text
        self._record("slack", THREAD_KIND, delivery, detail)

    def say(self, kind: str, text: str) -> None:
        """A line of plain text in the release's thread (a new message when the thread could not be opened);
        ``text`` is escaped, never read as markup."""
        self._post_in_thread(kind, escape(text))

    def _post_in_thread(self, kind: str, text: str) -> None:
        if self.slack is None:
            return
        thread = self._thread()
        delivery = deliver(lambda: self.slack.post(text, thread_ts=thread.ts if thread else None),
                           f"slack {kind}", backoff_s=self.backoff_s)
        self._record("slack", kind, delivery, text)

    def request_approval(self, approval: str, description: str, version: str, evidence: list[str],
                         run_url: str) -> SlackMessage | None:
        """Post the approval's Approve / Reject message to the channel (not the thread: it needs eyes); None when
        it could not be posted (the approval stays answerable in the Airflow UI)."""
        if self.slack is None:
            return None
        kind = f"approval_requested:{approval}"
        text = f"Approval needed: {description} ({version})"
        blocks = approval_blocks(self.release_id, approval, description, version, evidence, run_url)
        delivery = deliver(lambda: self.slack.post(text, blocks), f"slack {kind}", backoff_s=self.backoff_s)
        self._record("slack", kind, delivery, json.dumps(delivery.value.__dict__) if delivery.ok else text)
        return delivery.value if delivery.ok else None

    def close_approval(self, approval: str, message: SlackMessage | None, text: str) -> None:
        """Replace the approval message's buttons with the decision (``chat.update``), and tell the thread;
        ``text`` is mrkdwn built by :func:`~sap_llm_release.notify.slack.approval_closed_text`."""
        if self.slack is None:
            return
        if message is not None:
            kind = f"approval_closed:{approval}"
            delivery = deliver(lambda: self.slack.update(message, text, approval_closed_blocks(text)),
                               f"slack {kind}", backoff_s=self.backoff_s)
            self._record("slack", kind, delivery, text)
        self._post_in_thread(f"approval:{approval}", text)

    def _pages_sent(self) -> set[str]:
        return {row["kind"] for row in self.ledger.sent_notifications(self.release_id, "pagerduty")}

    def page(self, kind: str, summary: str, details: dict | None = None) -> None:
        """Trigger the release's one PagerDuty alert (its dedup key is the release's); a kind already sent, by
        this try or an earlier one, is not sent again."""
        if self.pager is None or kind in self._pages_sent():
            return
        delivery = deliver(lambda: self.pager.trigger(self.release_id, summary, details=details),
                           f"pagerduty {kind}", backoff_s=self.backoff_s)
        self._record("pagerduty", kind, delivery, f"{summary} (dedup key {dedup_key(self.release_id)})")

    def resolve_page(self, kind: str, summary: str) -> None:
        """Resolve the release's alert, when one was triggered and is not resolved yet."""
        sent = self._pages_sent() if self.pager is not None else set()
        if not sent - {kind} or kind in sent:
            return
        delivery = deliver(lambda: self.pager.resolve(self.release_id), f"pagerduty {kind}",
                           backoff_s=self.backoff_s)
        self._record("pagerduty", kind, delivery, f"{summary} (dedup key {dedup_key(self.release_id)})")
