"""The Service selector switch over HTTP against the Kubernetes API stand-in (``kube_api``)."""

from __future__ import annotations

import time

import pytest

from sap_llm_release.routers.base import RouterError, Weights
from sap_llm_release.routers.service_selector import ServiceSelectorRouter

NAMESPACE, SERVICE = "sap-llm-prod", "sap-llm"


def service(selector: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE, "labels": {"app": "sap-llm"}},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }


@pytest.fixture
def router(kube_api) -> ServiceSelectorRouter:
    return ServiceSelectorRouter(kube_api.api_client(), namespace=NAMESPACE, service=SERVICE, timeout_s=0.5)


def live_selector(kube) -> dict[str, str]:
    return kube.get("services", SERVICE, NAMESPACE)["spec"]["selector"]


def patches(kube) -> list:
    return [seen for seen in kube.requests if seen.method == "PATCH"]


def test_cutover_and_rollback_switch_the_version_only(kube_api, router):
    seeded = kube_api.put(service({"app": "sap-llm", "version": "blue"}))
    assert router.get_weights() == Weights(100, 0)

    assert router.set_weights(Weights(0, 100)) is True
    assert router.get_weights() == Weights(0, 100)
    assert live_selector(kube_api) == {"app": "sap-llm", "version": "green"}

    assert router.set_weights(Weights(100, 0)) is True  # rollback
    live = kube_api.get("services", SERVICE, NAMESPACE)
    assert live["spec"] == seeded["spec"]
    assert live["metadata"]["labels"] == seeded["metadata"]["labels"]
    assert len(patches(kube_api)) == 2


def test_no_write_when_the_selector_already_names_the_colour(kube_api, router):
    kube_api.put(service({"app": "sap-llm", "version": "green"}))

    assert router.set_weights(Weights(0, 100)) is False
    assert patches(kube_api) == []


@pytest.mark.parametrize("green", [5, 20, 50])
def test_a_split_is_refused_before_any_request(kube_api, router, green):
    kube_api.put(service({"app": "sap-llm", "version": "blue"}))

    with pytest.raises(RouterError, match=rf"^Service {NAMESPACE}/{SERVICE} \(selector version\) switches all traffic "
                                          rf"at once: it cannot apply blue {100 - green}% / green {green}%$"):
        router.set_weights(Weights.green_percent(green))
    assert kube_api.requests == []


@pytest.mark.parametrize(("selector", "shown"), [({"app": "sap-llm"}, "None"), ({"version": "canary"}, "'canary'")])
def test_a_selector_naming_neither_colour_fails_the_read_and_is_overwritten(kube_api, router, selector, shown):
    kube_api.put(service(selector))

    with pytest.raises(RouterError, match=rf"selects version {shown}, neither blue nor green$"):
        router.get_weights()
    assert router.set_weights(Weights(100, 0)) is True
    assert live_selector(kube_api) == {**selector, "version": "blue"}


def test_a_missing_service_is_named(router):
    with pytest.raises(RouterError, match=rf"^Service {NAMESPACE}/{SERVICE} \(selector version\) get error: HTTP 404 "
                                          rf'Not Found: services "{SERVICE}" not found$'):
        router.get_weights()


@pytest.mark.parametrize(("method", "status", "verb"), [("GET", 500, "get"), ("PATCH", 409, "patch"),
                                                        ("PATCH", 500, "patch")])
def test_api_errors_name_the_service_and_the_status(kube_api, router, method, status, verb):
    kube_api.put(service({"app": "sap-llm", "version": "blue"}))
    kube_api.fail_next(method, f"/services/{SERVICE}", status)

    with pytest.raises(RouterError, match=rf"^Service {NAMESPACE}/{SERVICE} .* {verb} error: HTTP {status} "):
        router.set_weights(Weights(0, 100))


def test_a_stalled_answer_times_out(kube_api, router):
    kube_api.put(service({"app": "sap-llm", "version": "blue"}))
    kube_api.stall_next("PATCH", f"/services/{SERVICE}", 5)

    started = time.monotonic()
    with pytest.raises(RouterError, match=r"\(selector version\) patch error: .*Read timed out"):
        router.set_weights(Weights(0, 100))
    assert time.monotonic() - started < 3


def test_roles_map_onto_the_slots_after_a_promotion(kube_api):
    """After a promotion the slot labelled green serves production: it is the blue role now."""
    kube_api.put(service({"app": "sap-llm", "version": "green"}))
    router = ServiceSelectorRouter(kube_api.api_client(), namespace=NAMESPACE, service=SERVICE, timeout_s=0.5,
                                   slots={"blue": "green", "green": "blue"})
    assert router.get_weights() == Weights(100, 0)
    assert router.set_weights(Weights(0, 100)) is True
    assert live_selector(kube_api) == {"app": "sap-llm", "version": "blue"}
