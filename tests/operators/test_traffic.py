"""The decision operator over the real DAG: the watched tasks it hands the core's decision are the traffic and
post-deployment groups' (the decision itself: tests/sap_llm_release/test_rollout.py)."""

from __future__ import annotations

import pytest

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
