"""An audit told to people: one Slack message with the summary and the report's link; PagerDuty only for critical
findings, one alert per audit and check (its dedup key), resolved when a later run finds the check clear again.
Every attempt is recorded in the ledger; nothing here raises."""

from __future__ import annotations

from collections.abc import Callable

from sap_llm_release.audits.model import AuditRun, Severity
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.notify.delivery import Delivery, deliver
from sap_llm_release.notify.pagerduty import Pager
from sap_llm_release.notify.slack import SlackChannel


def page_key(service: str, audit: str, check: str) -> str:
    """One PagerDuty alert per audit and check: a finding that stays critical updates it, never pages again."""
    return f"{service}-audit/{audit}/{check}"


class AuditNotifier:
    def __init__(self, ledger: Ledger, service: str, writer: Writer, slack: SlackChannel | None = None,
                 pager: Pager | None = None, backoff_s: float = 0.5) -> None:
        self.ledger, self.service, self.writer = ledger, service, writer
        self.slack, self.pager, self.backoff_s = slack, pager, backoff_s

    def _send(self, run: AuditRun, channel: str, kind: str, key: str, send: Callable[[], object],
              detail: str) -> Delivery:
        delivery = deliver(send, f"{channel} {kind}", backoff_s=self.backoff_s)
        self.ledger.record_audit_notification(
            run.run_id, channel=channel, kind=kind, dedup_key=key, sent=delivery.ok,
            detail=detail if delivery.ok else f"{detail}; {delivery.detail}", writer=self.writer)
        return delivery

    def summary(self, run: AuditRun, text: str) -> None:
        """Post the audit's one Slack message (``text`` is mrkdwn built by the report's ``summary_text``)."""
        if self.slack is not None:
            self._send(run, "slack", "summary", run.audit, lambda: self.slack.post(text), text)

    def pages(self, run: AuditRun, previously_critical: set[str]) -> None:
        """Trigger an alert for each critical finding; resolve the alert of each check in
        ``previously_critical`` (critical in the audit's last run) that this run finds clear."""
        if self.pager is None:
            return
        for finding in run.findings:
            key = page_key(self.service, run.audit, finding.check)
            if finding.severity is Severity.CRITICAL:
                summary = f"{run.audit} audit: {finding.check} critical: {finding.detail}"
                details = {"measured": finding.measured, "bounds": finding.threshold}
                self._send(run, "pagerduty", f"trigger:{finding.check}", key,
                           lambda k=key, s=summary, d=details: self.pager.trigger_key(k, s, details=d), summary[:500])
            elif finding.check in previously_critical:
                summary = f"{run.audit} audit: {finding.check} clear again ({finding.severity.value})"
                self._send(run, "pagerduty", f"resolve:{finding.check}", key,
                           lambda k=key: self.pager.resolve_key(k), summary)
