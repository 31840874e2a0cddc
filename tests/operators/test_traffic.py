"""The decision operator over the real DAG: the watched tasks it hands the core's decision are the traffic and
post-deployment groups' (the decision itself: tests/sap_llm_release/test_rollout.py). Green's deployment waits
deferred only where green is not ready within seconds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.exceptions import TaskDeferred

from operators import traffic
from tests.support.runs import release_dag

WATCHED = ("traffic_shift", "post_deployment")


@pytest.fixture(scope="module")
def decide():
    return release_dag().get_task("decide_promote_or_rollback")


def _states(decide, **overrides):
    states = {t.task_id: "success" for t in decide.dag.tasks if t.task_id.split(".")[0] in WATCHED}
    states["start_release"] = "success"
    states.update(overrides)
    return states


def _choose(monkeypatch, decide, states):
    monkeypatch.setattr(traffic, "task_states", lambda context: states)
    return decide.choose_branch(context={})


def test_every_watched_task_succeeded_promotes(monkeypatch, decide):
    assert _choose(monkeypatch, decide, _states(decide)) == "decommission_blue.blue_has_no_traffic"


def test_a_failed_window_rolls_back(monkeypatch, decide):
    states = _states(decide, **{"traffic_shift.shift_to_020": "failed"})
    assert _choose(monkeypatch, decide, states) == "rollback.rollback_to_blue"


def test_a_watched_task_without_a_state_rolls_back_rather_than_promotes(monkeypatch, decide):
    states = _states(decide)
    del states["post_deployment.post_error_rate"]
    assert _choose(monkeypatch, decide, states) == "rollback.rollback_to_blue"


class GreenSlot:
    """A deployer whose green answers ready, or not, when asked."""

    def __init__(self, ready: bool) -> None:
        self.ready, self.deployed, self.waited = ready, [], []

    def deploy(self, colour, version):
        self.deployed.append((colour, version))
        return True

    def wait_ready(self, colour, timeout_s):
        self.waited.append((colour, timeout_s))
        return self.ready, "200 from /health/ready" if self.ready else "connection refused"


def _deploy_green(monkeypatch, ready: bool):
    deployer = GreenSlot(ready)
    events = []
    run = SimpleNamespace(target=SimpleNamespace(deployer=deployer, name="local", pods=None, slots={}),
                          request=SimpleNamespace(version="1.1.0"), blue_slot="blue",
                          event=lambda name, detail="": events.append((name, detail)))
    monkeypatch.setattr(traffic, "ReleaseRun", lambda spec_path, context: run)
    operator = traffic.DeployGreenOperator(task_id="deploy_green", spec_path="specs/sap_llm.yaml")
    return operator, deployer, events


def test_a_green_ready_within_seconds_goes_on_without_deferring(monkeypatch):
    """No deferral whose trigger would fire within a second (Airflow 3.3's stale executor event, #72716)."""
    operator, deployer, events = _deploy_green(monkeypatch, ready=True)
    assert operator.execute({}) == "1.1.0"
    assert deployer.waited == [("green", operator.READY_BEFORE_DEFER_S)]
    assert [name for name, _ in events] == ["green_deployed", "green_ready"]


def test_a_green_not_ready_within_seconds_is_waited_for_deferred(monkeypatch):
    operator, _, events = _deploy_green(monkeypatch, ready=False)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert type(deferred.value.trigger).__name__ == "RolloutTrigger" and deferred.value.trigger.colour == "green"
    assert [name for name, _ in events] == ["green_deployed"]
