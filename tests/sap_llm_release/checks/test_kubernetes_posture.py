"""The monthly audit's posture checks through the official client against the Kubernetes API stand-in: images by
digest, secrets' rotation age and RBAC drift against deploy/kubernetes/rbac.yaml, each passing, failing with what it
measured, and naming what drifted. (Their failures to reach an API are tested with every cluster kind in
test_kubernetes.py.)"""

from __future__ import annotations

import copy
import datetime

import pytest
import yaml

from sap_llm_release.checks.kubernetes import KubernetesAccess
from sap_llm_release.checks.kubernetes_posture import (
    PROJECT_ROOT,
    KubernetesImageDigests,
    KubernetesRbacDrift,
    KubernetesSecretAge,
)
from sap_llm_release.evidence import Threshold, Verdict
from tests.sap_llm_release.checks.test_kubernetes import NAMESPACE, SECRET_VALUE, b64, run, secret

NONE = Threshold(op="==", value=0)
WITHIN_90_DAYS = Threshold(op="<=", value=90, unit="days")
DIGEST = "sha256:" + "ab" * 32
RBAC_MANIFEST = "deploy/kubernetes/rbac.yaml"


@pytest.fixture
def access(kube_api):
    return KubernetesAccess(kube_api.api_client(), NAMESPACE, request_timeout_s=2)


def deployment(name: str, images: dict[str, str], init: dict[str, str] | None = None,
               labels: dict | None = None) -> dict:
    containers = [{"name": container, "image": image} for container, image in images.items()]
    spec = {"containers": containers, **({"initContainers": [{"name": c, "image": i} for c, i in init.items()]}
                                         if init else {})}
    labels = labels or {"app": "sap-llm"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": spec}}}


def test_images_pinned_by_digest_pass(kube_api, access):
    kube_api.put(deployment("sap-llm-blue", {"server": f"registry.example.com/sap-llm/server@{DIGEST}"},
                            init={"weights": f"registry.example.com/sap-llm/fetch@{DIGEST}"}))
    evidence = run(KubernetesImageDigests, {}, NONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.PASSED, 0, f"2 of 2 containers of 1 Deployments in {NAMESPACE} pinned by digest")


def test_images_by_tag_are_counted_and_named(kube_api, access):
    kube_api.put(deployment("sap-llm-blue", {"server": f"registry.example.com/sap-llm/server@{DIGEST}"}))
    kube_api.put(deployment("sap-llm-green", {"server": "registry.example.com/sap-llm/server:1.2.0",
                                              "sidecar": "envoyproxy/envoy"},
                            init={"weights": f"registry.example.com/sap-llm/fetch:latest@{DIGEST}"}))
    kube_api.put(deployment("other-team", {"app": "nginx:1.27"}, labels={"app": "other"}))
    evidence = run(KubernetesImageDigests, {"label_selector": "app=sap-llm"}, NONE, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert evidence.detail == (
        f"2 of 4 containers of 2 Deployments with app=sap-llm in {NAMESPACE} pinned by digest; by tag: "
        "sap-llm-green/server: registry.example.com/sap-llm/server:1.2.0, sap-llm-green/sidecar: envoyproxy/envoy")
    assert run(KubernetesImageDigests, {}, NONE, access).measured == 3


def test_no_deployment_is_nothing_measured(kube_api, access):
    evidence = run(KubernetesImageDigests, {"label_selector": "app=sap-llm"}, NONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.FAILED, None, f"no Deployment with app=sap-llm in {NAMESPACE}")


def rotated(name: str, days_ago: float) -> dict:
    at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    obj = secret(name, {"key": SECRET_VALUE})
    obj["metadata"]["annotations"] = {"sap-llm.io/rotated-at": at.isoformat()}
    return obj


def test_secret_age_is_the_oldest_rotation(kube_api, access):
    kube_api.put(rotated("sap-llm-api-keys", 30))
    kube_api.put(secret("sap-llm-db-credentials", {"cosmos-key": SECRET_VALUE}))  # created now, never rotated
    evidence = run(KubernetesSecretAge, {"names": ["sap-llm-api-keys", "sap-llm-db-credentials"]}, WITHIN_90_DAYS,
                   access)
    assert evidence.verdict is Verdict.PASSED and 29.9 < evidence.measured <= 30.01
    assert evidence.detail.startswith(f"oldest of 2 secrets in {NAMESPACE}; sap-llm-api-keys 30 d (since ")
    assert "sap-llm.io/rotated-at); sap-llm-db-credentials 0 d (since " in evidence.detail
    assert evidence.detail.endswith("creationTimestamp)")
    assert SECRET_VALUE not in repr(evidence) and b64(SECRET_VALUE) not in repr(evidence)


def test_a_secret_past_the_rotation_policy_fails(kube_api, access):
    kube_api.put(rotated("sap-llm-api-keys", 120))
    evidence = run(KubernetesSecretAge, {"names": ["sap-llm-api-keys"]}, WITHIN_90_DAYS, access)
    assert evidence.verdict is Verdict.FAILED and 119.9 < evidence.measured <= 120.01


@pytest.mark.parametrize(("seeded", "detail"), [
    (None, f"secret {NAMESPACE}/sap-llm-api-keys not found"),
    ({"sap-llm.io/rotated-at": "last spring"}, f"secret {NAMESPACE}/sap-llm-api-keys: no readable "
                                               "sap-llm.io/rotated-at (Invalid isoformat string: 'last spring')"),
])
def test_a_secret_age_that_cannot_be_read_is_nothing_measured(kube_api, access, seeded, detail):
    if seeded is not None:
        obj = secret("sap-llm-api-keys", {"key": SECRET_VALUE})
        obj["metadata"]["annotations"] = seeded
        kube_api.put(obj)
    evidence = run(KubernetesSecretAge, {"names": ["sap-llm-api-keys"]}, WITHIN_90_DAYS, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (Verdict.FAILED, None, detail)


def committed_rbac() -> list[dict]:
    return [obj for obj in yaml.safe_load_all((PROJECT_ROOT / RBAC_MANIFEST).read_text()) if obj]


@pytest.fixture
def rbac_as_committed(kube_api):
    """The cluster holding deploy/kubernetes/rbac.yaml, rules and subjects in another order than the file's."""
    for obj in committed_rbac():
        obj = copy.deepcopy(obj)
        if "rules" in obj:
            obj["rules"] = [{**rule, "verbs": list(reversed(rule["verbs"]))} for rule in reversed(obj["rules"])]
        kube_api.put(obj)
    return kube_api


def test_rbac_as_committed_has_no_drift(rbac_as_committed, access):
    evidence = run(KubernetesRbacDrift, {}, NONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.PASSED, 0, f"6 of 6 objects of {RBAC_MANIFEST} as committed in {NAMESPACE}")


def test_rbac_drift_names_each_object_and_a_binding_added_by_hand(rbac_as_committed, access):
    role = rbac_as_committed.get("roles", "sap-llm-release", NAMESPACE)
    role["rules"].append({"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]})
    rbac_as_committed.put(role)
    assert rbac_as_committed.delete("clusterrolebindings", "sap-llm-release-infrastructure-checks")
    rbac_as_committed.put({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                           "metadata": {"name": "debug-admin", "namespace": NAMESPACE},
                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                       "name": "cluster-admin"},
                           "subjects": [{"kind": "ServiceAccount", "name": "sap-llm", "namespace": NAMESPACE}]})
    evidence = run(KubernetesRbacDrift, {}, NONE, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 3)
    assert evidence.detail == (
        f"3 of 6 objects of {RBAC_MANIFEST} as committed in {NAMESPACE}; drift: Role sap-llm-release differs in "
        "rules; ClusterRoleBinding sap-llm-release-infrastructure-checks missing; RoleBinding debug-admin not in "
        f"{RBAC_MANIFEST} binds sap-llm to ClusterRole cluster-admin")


def test_rbac_in_another_namespace_is_compared_there(kube_api, access):
    evidence = run(KubernetesRbacDrift, {"namespace": "sap-llm-staging"}, NONE, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 6)
    assert "ServiceAccount sap-llm missing" in evidence.detail and " in sap-llm-staging; " in evidence.detail

