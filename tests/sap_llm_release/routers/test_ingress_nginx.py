"""The ingress-nginx canary router over HTTP against the Kubernetes API stand-in (``kube_api``)."""

from __future__ import annotations

import time

import pytest

from sap_llm_release.routers.base import RouterError, Weights
from sap_llm_release.routers.ingress_nginx import CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, IngressCanaryRouter

NAMESPACE, PRIMARY, CANARY_INGRESS = "sap-llm-prod", "sap-llm-blue", "sap-llm-green"
REWRITE = {"nginx.ingress.kubernetes.io/proxy-body-size": "50m"}


def ingress(name: str, service: str, annotations: dict[str, str]) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": NAMESPACE, "annotations": {**REWRITE, **annotations}},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["sap-llm.example.com"], "secretName": "sap-llm-tls"}],
            "rules": [{"host": "sap-llm.example.com", "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": {"number": 8080}}},
            }]}}],
        },
    }


def canary(annotations: dict[str, str]) -> dict:
    return ingress(CANARY_INGRESS, "sap-llm-green", annotations)


@pytest.fixture
def primary(kube_api) -> dict:
    return kube_api.put(ingress(PRIMARY, "sap-llm-blue", {}))


@pytest.fixture
def router(kube_api) -> IngressCanaryRouter:
    return IngressCanaryRouter(kube_api.api_client(), namespace=NAMESPACE, canary_ingress=CANARY_INGRESS, timeout_s=0.5)


def live_annotations(kube) -> dict[str, str]:
    return kube.get("ingresses", CANARY_INGRESS, NAMESPACE)["metadata"]["annotations"]


def patches(kube) -> list:
    return [seen for seen in kube.requests if seen.method == "PATCH"]


def test_steps_and_rollback_set_the_canary_weight_only(kube_api, primary, router):
    seeded = kube_api.put(canary({CANARY: "true", CANARY_WEIGHT: "0"}))
    assert router.get_weights() == Weights(100, 0)

    for green in (5, 20, 50, 100, 0):
        assert router.set_weights(Weights.green_percent(green)) is True
        assert router.get_weights() == Weights.green_percent(green)
        assert live_annotations(kube_api) == {**REWRITE, CANARY: "true", CANARY_WEIGHT: str(green)}

    assert kube_api.get("ingresses", CANARY_INGRESS, NAMESPACE)["spec"] == seeded["spec"]
    assert kube_api.get("ingresses", PRIMARY, NAMESPACE) == primary
    assert [seen.path.rsplit("/", 1)[-1] for seen in patches(kube_api)] == [CANARY_INGRESS] * 5


def test_no_write_when_the_live_split_is_already_there(kube_api, router):
    kube_api.put(canary({CANARY: "true", CANARY_WEIGHT: "50", CANARY_WEIGHT_TOTAL: "1000"}))  # 5 %

    assert router.get_weights() == Weights(95, 5)
    assert router.set_weights(Weights(95, 5)) is False
    assert patches(kube_api) == []


def test_another_weight_total_is_brought_back_to_percent(kube_api, router):
    kube_api.put(canary({CANARY: "true", CANARY_WEIGHT: "50", CANARY_WEIGHT_TOTAL: "1000"}))

    assert router.set_weights(Weights(80, 20)) is True
    assert live_annotations(kube_api) == {**REWRITE, CANARY: "true", CANARY_WEIGHT: "20", CANARY_WEIGHT_TOTAL: "100"}


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({}, "is not a canary: nginx.ingress.kubernetes.io/canary is None"),
        ({CANARY: "false", CANARY_WEIGHT: "5"}, "is not a canary: nginx.ingress.kubernetes.io/canary is 'false'"),
        ({CANARY: "true", CANARY_WEIGHT: "five"}, "holds an invalid canary weight 'five' of '100'"),
        ({CANARY: "true", CANARY_WEIGHT: "120"}, "holds an invalid canary weight '120' of '100'"),
    ],
)
def test_a_broken_canary_fails_the_read_and_is_repaired_by_a_write(kube_api, router, annotations, message):
    kube_api.put(canary(annotations))

    with pytest.raises(RouterError, match=rf"^Ingress {NAMESPACE}/{CANARY_INGRESS} \(ingress-nginx canary\) {message}"):
        router.get_weights()
    assert router.set_weights(Weights(100, 0)) is True
    assert live_annotations(kube_api) == {**REWRITE, CANARY: "true", CANARY_WEIGHT: "0"}


def test_a_missing_ingress_is_named(router):
    with pytest.raises(RouterError, match=rf"^Ingress {NAMESPACE}/{CANARY_INGRESS} \(ingress-nginx canary\) get error: "
                                          rf'HTTP 404 Not Found: ingresses.networking.k8s.io "{CANARY_INGRESS}" not'):
        router.get_weights()


@pytest.mark.parametrize(("method", "status", "verb"), [("GET", 500, "get"), ("PATCH", 409, "patch"),
                                                        ("PATCH", 500, "patch")])
def test_api_errors_name_the_ingress_and_the_status(kube_api, router, method, status, verb):
    kube_api.put(canary({CANARY: "true", CANARY_WEIGHT: "0"}))
    kube_api.fail_next(method, f"/ingresses/{CANARY_INGRESS}", status)

    with pytest.raises(RouterError, match=rf"^Ingress {NAMESPACE}/{CANARY_INGRESS} .* {verb} error: HTTP {status} "):
        router.set_weights(Weights(95, 5))


def test_a_stalled_answer_times_out(kube_api, router):
    kube_api.put(canary({CANARY: "true", CANARY_WEIGHT: "0"}))
    kube_api.stall_next("PATCH", f"/ingresses/{CANARY_INGRESS}", 5)

    started = time.monotonic()
    with pytest.raises(RouterError, match=r"\(ingress-nginx canary\) patch error: .*Read timed out"):
        router.set_weights(Weights(95, 5))
    assert time.monotonic() - started < 3
