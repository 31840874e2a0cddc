"""The deadline alert's callback pages on-call once per release, with the release's dedup key, and tells Slack."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from operators.deadline import page_stuck_release
from sap_llm_release.ledger import Ledger, Writer


@pytest.fixture
def release(airflow_db, notification_standins):
    ledger = Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])
    ledger.migrate()
    run_id = f"manual__stuck-{uuid.uuid4().hex[:8]}"
    release_id = f"sap_llm_release:{run_id}"
    writer = Writer("sap_llm_release", run_id, "start_release", 1)
    ledger.record_release(release_id, service="sap-llm", environment="rehearsal", version="1.4.0",
                          profile="rehearsal", triggered_by="alice", spec_digest="abc", blue_slot="blue",
                          writer=writer)
    ledger.record_event(release_id, "green_deployed", "slot green", writer)
    return ledger, run_id, release_id


def test_a_stuck_release_pages_once_under_its_dedup_key(release, notification_standins):
    ledger, run_id, release_id = release
    slack, pagerduty = notification_standins
    context = {"dag_run": {"dag_id": "sap_llm_release", "dag_run_id": run_id, "state": "running",
                           "queued_at": "2026-11-26T08:00:00+00:00"},
               "deadline": {"id": "1", "deadline_time": "2026-11-26T22:00:00+00:00"}}

    page_stuck_release(context)
    page_stuck_release(context)  # a second call (a retried callback) does not page again

    (event,) = [e for e in pagerduty.events() if e["dedup_key"] == f"sap-llm-release/{release_id}"]
    assert event["event_action"] == "trigger"
    assert "is stuck: still running at its deadline 2026-11-26T22:00:00" in event["payload"]["summary"]
    assert "last recorded: green_deployed slot green" in event["payload"]["summary"]
    pages = [(row["kind"], row["status"]) for row in ledger.release_record(release_id)["notifications"]
             if row["channel"] == "pagerduty"]
    assert pages == [("stuck", "sent")]
    assert any("is stuck" in post["text"] for post in slack.calls("chat.postMessage"))
