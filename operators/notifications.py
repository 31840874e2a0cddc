"""The release's notifier from Airflow connections: ``sap_llm_slack`` (the slack provider's connection: token as
password, ``base_url`` in extra) and ``sap_llm_pagerduty`` (routing key as password, the Events API base URL as
``extra.url``, optionally ``extra.verify``: a CA bundle path). A missing connection means that channel is off, which
the release records once as an event; it never stops a release."""

from __future__ import annotations

import logging
from typing import Any

from operators.runtime import ReleaseRun
from sap_llm_release.audits.notify import AuditNotifier
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.notify.notifier import ReleaseNotifier
from sap_llm_release.notify.pagerduty import Pager
from sap_llm_release.notify.slack import SlackChannel

log = logging.getLogger(__name__)
SLACK_CONN_ID = "sap_llm_slack"
PAGERDUTY_CONN_ID = "sap_llm_pagerduty"
SLACK_CHANNEL = "#sap-llm-releases"
PAGERDUTY_SOURCE = "sap-llm-release"


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _slack() -> SlackChannel | None:
    conn = _connection(SLACK_CONN_ID)
    if conn is None:
        return None
    from airflow.providers.slack.hooks.slack import SlackHook

    channel = conn.extra_dejson.get("channel", SLACK_CHANNEL)
    return SlackChannel(SlackHook(slack_conn_id=SLACK_CONN_ID, timeout=10).client, channel)


def _pager() -> Pager | None:
    conn = _connection(PAGERDUTY_CONN_ID)
    if conn is None:
        return None
    import pagerduty

    extra = conn.extra_dejson
    client = pagerduty.EventsApiV2Client(conn.password, base_url=extra.get("url"), verify=extra.get("verify", True),
                                         timeout=10)
    return Pager(client, extra.get("source", PAGERDUTY_SOURCE))


def run_url(context: Any) -> str:
    """The run's page in the Airflow UI."""
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    return f"{base}/dags/{context['ti'].dag_id}/runs/{context['ti'].run_id}"


def _channel(build: Any) -> Any | None:
    """A channel built from its connection, or None when the connection cannot be used: a broken notification
    setup is logged, never a reason for a release step to fail."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - any connection or client construction error turns the channel off
        log.warning("notification channel %s is off: %s: %s", build.__name__, type(exc).__name__, exc)
        return None


def release_notifier_for(ledger: Ledger, release_id: str, writer: Writer) -> ReleaseNotifier:
    return ReleaseNotifier(ledger, release_id, writer, slack=_channel(_slack), pager=_channel(_pager))


def release_notifier(run: ReleaseRun) -> ReleaseNotifier:
    """The release's notifier; a dry run's sends nothing (its plan goes out on its own)."""
    if run.request.dry_run:
        return ReleaseNotifier(run.ledger, run.release_id, run.writer)
    return release_notifier_for(run.ledger, run.release_id, run.writer)


def audit_notifier(ledger: Ledger, service: str, writer: Writer) -> AuditNotifier:
    """The audits' notifier, on the same Slack and PagerDuty connections as releases."""
    return AuditNotifier(ledger, service, writer, slack=_channel(_slack), pager=_channel(_pager))
