"""Targets map the checklist's roles (blue: production, green: the new version) onto two alternating slots."""

from __future__ import annotations

import json

import pytest

from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.targets import TargetError, build_target, live_blue_slot, local_target, slots_for


class FixedRouter:
    def __init__(self, weights: Weights) -> None:
        self.weights = weights

    def get_weights(self) -> Weights:
        return self.weights

    def describe(self) -> str:
        return "fixed router"


@pytest.fixture
def stack_dir(tmp_path):
    ports = {"router": 18080, "blue": 18081, "green": 18082, "prometheus": 18083}
    (tmp_path / "stack.json").write_text(json.dumps({"ports": ports, "server_command": ["server"]}))
    return tmp_path


def test_slots_alternate():
    assert slots_for("blue") == {"blue": "blue", "green": "green"}
    assert slots_for("green") == {"blue": "green", "green": "blue"}
    with pytest.raises(TargetError, match="blue_slot: must be one of"):
        slots_for("purple")


def test_live_blue_slot_is_the_slot_with_all_traffic():
    assert live_blue_slot(FixedRouter(ALL_BLUE)) == "blue"
    assert live_blue_slot(FixedRouter(Weights(0, 100))) == "green"
    with pytest.raises(TargetError, match="splits blue 80% / green 20%; a release starts from one slot"):
        live_blue_slot(FixedRouter(Weights(80, 20)))


def test_swapped_target_points_roles_at_the_other_slots(stack_dir):
    target = local_target(stack_dir, blue_slot="green")
    assert target.url("blue") == "http://127.0.0.1:18082" and target.url("green") == "http://127.0.0.1:18081"
    assert target.router.addresses == {"blue": "127.0.0.1:18082", "green": "127.0.0.1:18081"}
    assert target.deployer.url("green") == "http://127.0.0.1:18081"
    assert target.deployer._state_file("green").name == "blue.json"


def test_build_target_fails_loudly(monkeypatch, stack_dir):
    monkeypatch.delenv("SAP_LLM_STACK_DIR", raising=False)
    with pytest.raises(TargetError, match="set SAP_LLM_STACK_DIR"):
        build_target("local")
    with pytest.raises(TargetError, match="kubernetes target: no Kubernetes deployer"):
        build_target("kubernetes")
    with pytest.raises(TargetError, match="unknown target 'moon'"):
        build_target("moon")
    monkeypatch.setenv("SAP_LLM_STACK_DIR", str(stack_dir))
    assert build_target("local", "green").slots == {"blue": "green", "green": "blue"}
