"""Targets map the checklist's roles (blue: production, green: the new version) onto two alternating slots."""

from __future__ import annotations

import json

import pytest
import yaml

from sap_llm_release.deployers.kubernetes import KubernetesDeployer
from sap_llm_release.kubernetes_settings import DEPLOY_DIR
from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.routers.gateway_api import HTTPRouteRouter
from sap_llm_release.routers.ingress_nginx import IngressCanaryRouter
from sap_llm_release.routers.service_selector import ServiceSelectorRouter
from sap_llm_release.service_logs.kubernetes_pods import KubernetesPodLogs
from sap_llm_release.service_logs.local_files import LocalProcessLogs
from sap_llm_release.targets import (
    TargetError,
    build_target,
    deployable_on_cluster,
    live_blue_slot,
    local_target,
    slots_for,
)


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
    assert isinstance(target.logs, LocalProcessLogs)  # both slots' process logs, whichever role each plays
    assert (target.logs.state_dir, target.logs.processes) == (stack_dir, ("blue", "green"))


def test_build_target_fails_loudly(monkeypatch, stack_dir):
    monkeypatch.delenv("SAP_LLM_STACK_DIR", raising=False)
    with pytest.raises(TargetError, match="set SAP_LLM_STACK_DIR"):
        build_target("local")
    monkeypatch.delenv("SAP_LLM_KUBERNETES_SETTINGS", raising=False)
    with pytest.raises(TargetError, match="kubernetes target: set SAP_LLM_KUBERNETES_SETTINGS"):
        build_target("kubernetes")
    with pytest.raises(TargetError, match="unknown target 'moon'"):
        build_target("moon")
    monkeypatch.setenv("SAP_LLM_STACK_DIR", str(stack_dir))
    assert build_target("local", "green").slots == {"blue": "green", "green": "blue"}


# -- kubernetes ----------------------------------------------------------------------------------------------------

EXAMPLE = yaml.safe_load((DEPLOY_DIR / "settings.example.yaml").read_text())


def settings_file(tmp_path, **overrides):
    data = {**EXAMPLE, "deployment_template": str(DEPLOY_DIR / "deployment.yaml.tmpl"), **overrides}
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cluster(monkeypatch, tmp_path, kube_api, blue_slot="blue", **overrides):
    monkeypatch.setenv("SAP_LLM_KUBERNETES_SETTINGS", str(settings_file(tmp_path, **overrides)))
    return build_target("kubernetes", blue_slot, kubernetes_api=kube_api.api_client)


def test_kubernetes_target_from_its_settings_and_api_client(monkeypatch, tmp_path, kube_api):
    target = cluster(monkeypatch, tmp_path, kube_api, blue_slot="green")
    assert target.name == "kubernetes" and target.slots == {"blue": "green", "green": "blue"}
    assert isinstance(target.deployer, KubernetesDeployer) and target.deployer.slots == target.slots
    assert isinstance(target.router, HTTPRouteRouter)
    assert target.router.services == {"blue": "sap-llm-green", "green": "sap-llm-blue"}
    assert target.url("green") == "http://sap-llm-blue.sap-llm-prod.svc:8000"
    assert target.url("public") == EXAMPLE["urls"]["public"] and target.url("router") == EXAMPLE["urls"]["router"]
    assert target.kubernetes.namespace == "sap-llm-prod" and target.pods.job_images == EXAMPLE["job_images"]
    assert target.job_runner is None  # jobs run as pods, through the KubernetesPodOperator
    assert len(target.prometheus_replicas) == 3
    assert isinstance(target.logs, KubernetesPodLogs)
    assert (target.logs.namespace, target.logs.selector) == ("sap-llm-prod", "app=sap-llm")


def test_kubernetes_routers_by_setting(monkeypatch, tmp_path, kube_api):
    selector = cluster(monkeypatch, tmp_path, kube_api, "green", router="service_selector").router
    assert isinstance(selector, ServiceSelectorRouter) and selector.slots == {"blue": "green", "green": "blue"}
    assert isinstance(cluster(monkeypatch, tmp_path, kube_api, router="ingress_nginx").router, IngressCanaryRouter)
    with pytest.raises(TargetError, match="ingress-nginx canary sends its share to the green slot's Service only"):
        cluster(monkeypatch, tmp_path, kube_api, "green", router="ingress_nginx")


def test_kubernetes_settings_errors_name_the_field(monkeypatch, tmp_path, kube_api):
    with pytest.raises(TargetError, match=r"urls: .*must name the public URL"):
        cluster(monkeypatch, tmp_path, kube_api, urls={"router": "http://sap-llm:8000"})
    with pytest.raises(TargetError, match=r"job_images: .*validator: .* is not <repository>@sha256"):
        cluster(monkeypatch, tmp_path, kube_api, job_images={"validator": "registry.example.com/validator:1.0"})
    monkeypatch.setenv("SAP_LLM_KUBERNETES_SETTINGS", str(settings_file(tmp_path)))
    with pytest.raises(TargetError, match="no Kubernetes API client was given"):
        build_target("kubernetes")


def test_the_cluster_deploys_only_the_versions_its_settings_pin(monkeypatch, tmp_path, kube_api):
    target = cluster(monkeypatch, tmp_path, kube_api)
    assert target.deployable == {"1.0.0": f"{EXAMPLE['image']}@{EXAMPLE['versions']['1.0.0']}",
                                 "1.1.0": f"{EXAMPLE['image']}@{EXAMPLE['versions']['1.1.0']}"}
    target.refuse_undeployable("1.1.0")
    with pytest.raises(TargetError, match=r"^version: '9\.9\.9' is not deployable on the kubernetes target: its "
                                          r"settings pin no image digest for it \(deployable: 1\.0\.0, 1\.1\.0\)$"):
        target.refuse_undeployable("9.9.9")
    assert deployable_on_cluster() == target.deployable  # the trigger form's offer, from the same settings


def test_the_local_target_serves_any_version(stack_dir):
    target = local_target(stack_dir)
    assert target.deployable is None
    target.refuse_undeployable("9.9.9")
