"""The SLO window sensor's resumption: only an SLO window's event is read as one."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from operators.sensors import DEFERRAL_RETRIES, SLOWindowSensor


def test_an_event_of_another_trigger_starts_the_window_again(monkeypatch):
    """On a SQLite metadata database Airflow can hand a deleted trigger's id to the next one; the old trigger's
    event (here an approval's answer) then resumes the sensor. It watches again instead of failing or passing."""
    sensor = SLOWindowSensor(task_id="watch_005", spec_path="specs/sap_llm.yaml", weight=5)
    watched_again = []
    monkeypatch.setattr(sensor, "execute", lambda context: watched_again.append(context) or "deferred")
    approval_answer = {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "slack:U1"}}
    assert sensor.execute_complete({"ti": "context"}, approval_answer) == "deferred"
    assert watched_again == [{"ti": "context"}]


def test_a_failed_window_fails_the_task_for_good_so_its_retry_is_kept_for_other_failures(monkeypatch):
    """The watch's one retry (DEFERRAL_RETRIES) is for a lost worker or a stale executor event, never for a breach:
    the failed window raises AirflowFailException, which Airflow does not retry."""
    sensor = SLOWindowSensor(task_id="watch_005", spec_path="specs/sap_llm.yaml", weight=5, **DEFERRAL_RETRIES)
    monkeypatch.setattr("operators.sensors.off_green_at_resume", lambda run, event, reason: "taken by the trigger")
    with pytest.raises(AirflowFailException, match="traffic step 5% failed its SLO analysis: SLO error_rate"):
        sensor.window_failed(run=None, reason="SLO error_rate failed 2 of 2 checks", event={})
    assert sensor.retries == 1
