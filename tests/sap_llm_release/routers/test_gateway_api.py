"""The HTTPRoute router over HTTP against the Kubernetes API stand-in (``kube_api``)."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from sap_llm_release.routers.base import RouterError, Weights
from sap_llm_release.routers.gateway_api import GROUP, PLURAL, VERSION, HTTPRouteRouter

NAMESPACE, ROUTE = "sap-llm-prod", "sap-llm"
API_RULE = {
    "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
    "filters": [
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-env", "value": "prod"}]}},
    ],
    "timeouts": {"request": "30s"},
    "backendRefs": [
        {"name": "sap-llm-blue", "port": 8080, "weight": 100},
        {"name": "sap-llm-green", "port": 8080, "weight": 0},
    ],
}
HEALTH_RULE = {  # carries blue only: the router leaves it alone
    "matches": [{"path": {"type": "Exact", "value": "/health"}}],
    "backendRefs": [{"name": "sap-llm-blue", "port": 8080}],
}


def http_route(*rules: dict) -> dict:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": NAMESPACE, "labels": {"app": "sap-llm"}},
        "spec": {
            "parentRefs": [{"name": "public-gateway", "namespace": "gateway-system"}],
            "hostnames": ["sap-llm.example.com"],
            "rules": list(rules),
        },
    }


def rule_with(blue_weight, green_weight, template: dict = API_RULE) -> dict:
    rule = copy.deepcopy(template)
    for ref, weight in zip(rule["backendRefs"], (blue_weight, green_weight), strict=True):
        if weight is None:
            ref.pop("weight")
        else:
            ref["weight"] = weight
    return rule


@pytest.fixture
def router(kube_api) -> HTTPRouteRouter:
    return HTTPRouteRouter(kube_api.api_client(), namespace=NAMESPACE, route=ROUTE, blue_service="sap-llm-blue",
                           green_service="sap-llm-green", timeout_s=0.5)


def live_weights(kube) -> list[list[tuple[str, int]]]:
    route = kube.get("httproutes", ROUTE, NAMESPACE)
    return [[(ref["name"], ref.get("weight")) for ref in rule["backendRefs"]] for rule in route["spec"]["rules"]]


def patches(kube) -> list:
    return [seen for seen in kube.requests if seen.method == "PATCH"]


def test_steps_and_rollback_write_every_rule_and_keep_the_rest(kube_api, router):
    from kubernetes import client

    seeded = client.CustomObjectsApi(kube_api.api_client()).create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, http_route(API_RULE, rule_with(100, 0), HEALTH_RULE)
    )
    assert router.get_weights() == Weights(100, 0)

    for green in (5, 20, 50, 100, 0):
        assert router.set_weights(Weights.green_percent(green)) is True
        assert router.get_weights() == Weights.green_percent(green)
        pair = [("sap-llm-blue", 100 - green), ("sap-llm-green", green)]
        assert live_weights(kube_api) == [pair, pair, [("sap-llm-blue", None)]]

    live = kube_api.get("httproutes", ROUTE, NAMESPACE)
    assert live["spec"]["rules"] == [rule_with(100, 0), rule_with(100, 0), HEALTH_RULE]
    assert {key: live["spec"][key] for key in ("parentRefs", "hostnames")} == {
        key: seeded["spec"][key] for key in ("parentRefs", "hostnames")
    }
    assert live["metadata"]["labels"] == {"app": "sap-llm"}
    assert len(patches(kube_api)) == 5


def test_no_write_when_the_live_split_is_already_there(kube_api, router):
    kube_api.put(http_route(rule_with(190, 10)))  # 95/5 in other units

    assert router.get_weights() == Weights(95, 5)
    assert router.set_weights(Weights(95, 5)) is False
    assert patches(kube_api) == []
    assert live_weights(kube_api) == [[("sap-llm-blue", 190), ("sap-llm-green", 10)]]


def test_a_backend_without_weight_weighs_one(kube_api, router):
    kube_api.put(http_route(rule_with(None, None)))
    assert router.get_weights() == Weights(50, 50)


def test_rules_that_disagree_fail_the_read_and_are_set_alike(kube_api, router):
    kube_api.put(http_route(rule_with(95, 5), rule_with(80, 20)))

    with pytest.raises(RouterError, match=rf"HTTPRoute {NAMESPACE}/{ROUTE} rules disagree: blue 80% / green 20%, "):
        router.get_weights()
    assert router.set_weights(Weights(95, 5)) is True
    assert router.get_weights() == Weights(95, 5)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (rule_with(0, 0), r"sends no traffic to blue or green \(weights 0/0\)"),
        (rule_with("100", 0), "holds invalid weights '100'/0"),
    ],
)
def test_a_broken_split_fails_the_read_and_is_repaired_by_a_write(kube_api, router, rule, message):
    kube_api.put(http_route(rule))

    with pytest.raises(RouterError, match=rf"^HTTPRoute {NAMESPACE}/{ROUTE} {message}$"):
        router.get_weights()
    assert router.set_weights(Weights(100, 0)) is True
    assert live_weights(kube_api) == [[("sap-llm-blue", 100), ("sap-llm-green", 0)]]


def test_a_route_without_both_backends_can_be_neither_read_nor_set(kube_api, router):
    kube_api.put(http_route(HEALTH_RULE))
    message = rf"^HTTPRoute {NAMESPACE}/{ROUTE} has no rule with backendRefs to both sap-llm-blue and sap-llm-green$"

    with pytest.raises(RouterError, match=message):
        router.get_weights()
    with pytest.raises(RouterError, match=message):
        router.set_weights(Weights(95, 5))
    assert patches(kube_api) == []


def test_a_missing_route_is_named(router):
    with pytest.raises(RouterError, match=rf'^HTTPRoute {NAMESPACE}/{ROUTE} get error: HTTP 404 Not Found: httproutes'
                                          rf'.gateway.networking.k8s.io "{ROUTE}" not found$'):
        router.get_weights()


@pytest.mark.parametrize(("method", "status", "verb"), [("GET", 500, "get"), ("PATCH", 409, "patch"),
                                                        ("PATCH", 500, "patch")])
def test_api_errors_name_the_route_and_the_status(kube_api, router, method, status, verb):
    kube_api.put(http_route(API_RULE))
    kube_api.fail_next(method, f"/httproutes/{ROUTE}", status)

    with pytest.raises(RouterError, match=rf"^HTTPRoute {NAMESPACE}/{ROUTE} {verb} error: HTTP {status} "):
        router.set_weights(Weights(95, 5))


def test_a_route_changed_between_read_and_write_is_a_conflict(kube_api, router):
    kube_api.put(http_route(API_RULE))
    kube_api.stall_next("PATCH", f"/httproutes/{ROUTE}", 0.2)

    with ThreadPoolExecutor(1) as pool:
        shifting = pool.submit(router.set_weights, Weights(95, 5))
        while not patches(kube_api):  # the router has read the route and its write is held
            time.sleep(0.01)
        kube_api.put(http_route(rule_with(90, 10)))
        with pytest.raises(RouterError, match=r"patch error: HTTP 409 Conflict: Operation cannot be fulfilled"):
            shifting.result()
    assert live_weights(kube_api) == [[("sap-llm-blue", 90), ("sap-llm-green", 10)]]


def test_a_stalled_answer_times_out(kube_api, router):
    kube_api.put(http_route(API_RULE))
    kube_api.stall_next("PATCH", f"/httproutes/{ROUTE}", 5)

    started = time.monotonic()
    with pytest.raises(RouterError, match=rf"^HTTPRoute {NAMESPACE}/{ROUTE} patch error: .*Read timed out"):
        router.set_weights(Weights(95, 5))
    assert time.monotonic() - started < 3


def test_a_write_counts_once_the_gateway_controller_accepts_its_generation(kube_api, router):
    kube_api.put(http_route(API_RULE))
    assert router.set_weights(Weights(95, 5)) is True

    live = kube_api.get("httproutes", ROUTE, NAMESPACE)
    ((accepted,),) = [parent["conditions"] for parent in live["status"]["parents"]]
    assert (accepted["type"], accepted["status"]) == ("Accepted", "True")
    assert accepted["observedGeneration"] == live["metadata"]["generation"] == 2


def test_a_write_the_gateway_controller_never_accepts_raises_naming_the_split(kube_api):
    kube_api.put(http_route(API_RULE))  # accepted at generation 1
    kube_api.hold_route_acceptance(ROUTE)
    router = HTTPRouteRouter(kube_api.api_client(), namespace=NAMESPACE, route=ROUTE, blue_service="sap-llm-blue",
                             green_service="sap-llm-green", timeout_s=0.5, accept_timeout_s=1)

    with pytest.raises(RouterError, match=rf"^HTTPRoute {NAMESPACE}/{ROUTE} generation 2 \(blue 95% / green 5%\) "
                                          r"not accepted by the Gateway controller within 1s: public-gateway: "
                                          r"Accepted=True at generation 1$"):
        router.set_weights(Weights(95, 5))


def test_a_route_without_parent_status_is_never_accepted(kube_api):
    kube_api.hold_route_acceptance(ROUTE)
    kube_api.put(http_route(API_RULE))
    router = HTTPRouteRouter(kube_api.api_client(), namespace=NAMESPACE, route=ROUTE, blue_service="sap-llm-blue",
                             green_service="sap-llm-green", timeout_s=0.5, accept_timeout_s=0.5)

    with pytest.raises(RouterError, match=r"not accepted by the Gateway controller within 0.5s: no parent status$"):
        router.set_weights(Weights(95, 5))
