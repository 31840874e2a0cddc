"""Releases through Airflow's real components on the CeleryExecutor (api-server, scheduler, dag-processor, triggerer,
a Celery worker; PostgreSQL metadata, a Redis broker) against the live local stack: a release that promotes while
its scheduler and triggerer are SIGKILLed and restarted mid-window, and a breach that rolls back."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

import pytest

from sap_llm_release.ledger import Ledger
from sap_llm_release.rehearsal.processes import free_port
from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.spec import load_spec
from tests.support.celery_airflow import DAG_ID, celery_airflow
from tests.support.runs import release_conf

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]


@pytest.fixture
def ledger() -> Ledger:
    return Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])


@pytest.fixture
def airflow(quiet_stack, traffic_spec, notification_standins, tmp_path):
    """The components, started after the stack and the traffic spec so that they inherit both."""
    with celery_airflow(tmp_path / "airflow", free_port()) as started:
        yield started


def _window(record: dict, step: str) -> dict:
    return next(window for window in record["slo_windows"] if window["step"] == step)


def test_a_release_on_celery_promotes_with_its_scheduler_and_triggerer_killed_mid_window(airflow, quiet_stack,
                                                                                          ledger):
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    last = f"traffic_shift.watch_{steps[-1]:03d}"
    killed: list[float] = []

    def kill_during_the_last_window(states: dict) -> None:
        if not killed and states.get(last) == "deferred":
            time.sleep(3)  # the window's first checks ran in the triggerer
            killed.append(time.time())
            airflow.restart("scheduler", "triggerer")

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals], kill_during_the_last_window)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert state == "success", sorted(task for task, value in states.items() if value == "failed")
    assert killed, f"{last} never deferred"
    assert states["rollback.rollback_to_blue"] == "skipped"
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [event["event"] for event in record["release_events"]][-1] == "promoted"
    changes = record["traffic_changes"]
    assert [change["green_after"] for change in changes] == steps  # no step shifted twice
    assert quiet_stack.target.router.get_weights() == Weights(changes[-1]["blue_after"], changes[-1]["green_after"])
    assert [(w["step"], w["verdict"]) for w in record["slo_windows"]] == [
        (f"step_{w:03d}", "passed") for w in steps] + [("bake", "passed")]
    # the window the outage fell into resumed and ended at its absolute end, not a full window after the restart
    window = _window(record, f"step_{steps[-1]:03d}")
    started, ended = (datetime.fromisoformat(str(window[k])).timestamp() for k in ("started_at", "recorded_at"))
    assert started < killed[0] < ended
    assert window["window_seconds"] <= ended - started < window["window_seconds"] + 15


def test_a_breach_on_celery_rolls_back_to_blue(airflow, quiet_stack, ledger):
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    watcher = quiet_stack.when_green_weight(20, lambda: quiet_stack.set_faults("green", error_rate=1.0))

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals])
    watcher.join(timeout=5)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert state == "failed"
    assert states["traffic_shift.watch_020"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success" and states["rollback.watch_blue_recovery"] == "success"
    assert states["traffic_shift.shift_to_050"] != "success"  # nothing shifted after the breach
    assert quiet_stack.target.router.get_weights() == ALL_BLUE
    assert quiet_stack.target.deployer.running_version("green") is None
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [change["green_after"] for change in record["traffic_changes"]] == [5, 20, 0]
    assert len(record["rollbacks"]) == 1 and record["rollbacks"][0]["blue_weight_after"] == 100
    assert _window(record, "step_020")["verdict"] == "failed"
