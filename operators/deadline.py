"""The release's deadline alert: a run still going this long after it was queued is stuck (an approval nobody
answers, a hung job, a triggerer that is down). Airflow's deadline alerts call :func:`page_stuck_release` once, with
the run in ``context``; it pages on-call under the release's one PagerDuty dedup key and tells the Slack thread."""

from __future__ import annotations

from typing import Any

from operators.notifications import release_notifier_for
from operators.runtime import LEDGER_CONN_ID, connection_url, ledger_for
from sap_llm_release.ledger import Writer

DEADLINE_TASK = "deadline_alert"


def page_stuck_release(context: dict[str, Any], **_: Any) -> None:
    """Page "stuck" for the run in ``context`` (Airflow's deadline callback context: ``dag_run`` and ``deadline``)."""
    run, deadline = context["dag_run"], context.get("deadline", {})
    release_id = f"{run['dag_id']}:{run['dag_run_id']}"
    ledger = ledger_for(connection_url(LEDGER_CONN_ID))
    event = ledger.latest_event(release_id)
    last = f"last recorded: {event['event']} {event['detail']}".strip() if event else "nothing recorded"
    summary = f"release {release_id} is stuck: still running at its deadline {deadline.get('deadline_time', '')}; " \
              f"{last}"
    notifier = release_notifier_for(ledger, release_id, Writer(run["dag_id"], run["dag_run_id"], DEADLINE_TASK, 1))
    notifier.page("stuck", summary, details={"queued_at": run.get("queued_at"), "state": run.get("state")})
    notifier.say("stuck", summary)
