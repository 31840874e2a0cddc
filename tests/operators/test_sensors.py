"""The SLO window sensor's resumption (a traffic step's task watches its window after its shift): only an SLO
window's event is read as one, and another watches again without shifting again. The alerts-clear sensor goes on
without deferring when nothing fires."""

from __future__ import annotations

import json

import pytest
from airflow.exceptions import TaskDeferred
from airflow.sdk.exceptions import AirflowFailException

from operators.runtime import spec_at
from operators.sensors import DEFERRAL_GRACE, DEFERRAL_RETRIES, AlertsClearSensor
from operators.traffic import ShiftTrafficOperator
from operators.triggers import AlertsClearTrigger
from tests.operators.test_triggers import FIRING, _firing
from tests.sap_llm_release.conftest import CannedPrometheus
from tests.support.runs import release_conf


def test_an_event_of_another_trigger_starts_the_window_again_without_shifting_again(monkeypatch):
    """On a SQLite metadata database Airflow can hand a deleted trigger's id to the next one; the old trigger's
    event (here an approval's answer) then resumes the sensor. It watches again instead of failing or passing."""
    sensor = ShiftTrafficOperator(task_id="shift_to_005", spec_path="specs/sap_llm.yaml", weight=5)
    monkeypatch.setattr(sensor, "shift", lambda run: pytest.fail("shifted again"))
    watched_again = []
    monkeypatch.setattr(sensor, "watch_window", lambda context: watched_again.append(context) or "deferred")
    approval_answer = {"chosen_options": ["Approve"], "params_input": {}, "responded_by_user": {"id": "slack:U1"}}
    assert sensor.execute_complete({"ti": "context"}, approval_answer) == "deferred"
    assert watched_again == [{"ti": "context"}]


def test_a_failed_window_fails_the_task_for_good_so_its_retry_is_kept_for_other_failures(monkeypatch):
    """The watch's one retry (DEFERRAL_RETRIES) is for a lost worker or a stale executor event, never for a breach:
    the failed window raises AirflowFailException, which Airflow does not retry."""
    sensor = ShiftTrafficOperator(task_id="shift_to_005", spec_path="specs/sap_llm.yaml", weight=5,
                                  **DEFERRAL_RETRIES)
    monkeypatch.setattr("operators.sensors.off_green_at_resume", lambda run, event, reason: "taken by the trigger")
    with pytest.raises(AirflowFailException, match="traffic step 5% failed its SLO analysis: SLO error_rate"):
        sensor.window_failed(run=None, reason="SLO error_rate failed 2 of 2 checks", event={})
    assert sensor.retries == 1


@pytest.fixture
def prometheus(monkeypatch):
    canned = CannedPrometheus()
    connection = {"conn_type": "http", "extra": {"url": canned.url}}
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_PROMETHEUS", json.dumps(connection))
    yield canned
    canned.close()


def _clear_before_deploy(monkeypatch) -> tuple[AlertsClearSensor, list]:
    sensor = AlertsClearSensor(task_id="clear_before_deploy", spec_path="specs/sap_llm.yaml")
    recorded = []
    monkeypatch.setattr(sensor, "execute_complete", lambda context, event: recorded.append(event) or event)
    return sensor, recorded


def test_nothing_firing_goes_on_at_once_with_the_check_recorded_as_its_window(monkeypatch, prometheus):
    """No deferral whose trigger would fire within a second (Airflow 3.3's stale executor event, #72716)."""
    _firing(prometheus)
    sensor, recorded = _clear_before_deploy(monkeypatch)
    event = sensor.execute({"params": release_conf()})
    assert recorded == [event] and event["status"] == "passed" and event["checks"][0]["checks"] == 1
    assert prometheus.seen == [FIRING]


def test_a_firing_alert_defers_the_wait_to_the_trigger_bounded_by_the_specs_wait(monkeypatch, prometheus):
    _firing(prometheus, "SapLlmHighErrorRate")
    sensor, recorded = _clear_before_deploy(monkeypatch)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"params": release_conf()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AlertsClearTrigger) and trigger.alerts == FIRING and recorded == []
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == spec_at("specs/sap_llm.yaml").analysis.clear_before_traffic.wait + DEFERRAL_GRACE
