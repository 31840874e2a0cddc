"""The Slack callback plugin through its FastAPI app, outside a release: what it answers before any approval exists."""

from __future__ import annotations

import json

from tests.support.approvals import SlackClicker, click_body, signed


def test_without_a_signing_secret_every_request_is_refused(airflow_db, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SAP_LLM_SLACK_SIGNING")
    body = click_body("sap_llm_release:manual__x", "first_shift_go")
    reply = SlackClicker().post(body, signed(body))
    assert reply.status_code == 503
    assert "sap_llm_slack_signing with the Slack signing secret as password is missing" in reply.json()["text"]


def test_a_signed_click_for_an_approval_never_opened_is_refused_and_recorded(airflow_db):
    from tests.support.runs import ledger

    store = ledger()
    store.migrate()
    body = click_body("sap_llm_release:manual__never", "first_shift_go")
    reply = SlackClicker().post(body, signed(body))
    assert reply.status_code == 200  # a signed click is answered 200; the refusal is in the body
    assert (reply.json()["ok"], reply.json()["status"]) == (False, 404)
    assert reply.json()["text"] == "no approval first_shift_go was opened for release sap_llm_release:manual__never"
    (row,) = store.slack_interactions("sap_llm_release:manual__never")
    assert row["outcome"] == "refused" and json.dumps(row["detail"]).startswith('"no approval first_shift_go')
