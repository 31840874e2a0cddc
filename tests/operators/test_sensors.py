"""The SLO window sensor's resumption: only an SLO window's event is read as one."""

from __future__ import annotations

from operators.sensors import SLOWindowSensor


def test_an_event_of_another_trigger_starts_the_window_again(monkeypatch):
    """On a SQLite metadata database Airflow can hand a deleted trigger's id to the next one; the old trigger's
    event (here an approval's answer) then resumes the sensor. It watches again instead of failing or passing."""
    sensor = SLOWindowSensor(task_id="watch_005", spec_path="specs/sap_llm.yaml", weight=5)
    watched_again = []
    monkeypatch.setattr(sensor, "execute", lambda context: watched_again.append(context) or "deferred")
    approval_answer = {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "slack:U1"}}
    assert sensor.execute_complete({"ti": "context"}, approval_answer) == "deferred"
    assert watched_again == [{"ti": "context"}]
