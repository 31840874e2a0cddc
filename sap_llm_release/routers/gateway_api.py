"""A Gateway API HTTPRoute: the weights of its backendRefs to the blue and green Services split the traffic."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from sap_llm_release.routers.base import Router, RouterError, Weights
from sap_llm_release.routers.kubernetes_api import call_api

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


class HTTPRouteRouter(Router):
    """Sets blue's and green's weights in every rule of the route that carries both Services, keeping the rest; a
    write counts once the Gateway controller reports the route Accepted by every parent at the written generation
    (``status.parents[].conditions``), within ``accept_timeout_s``."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespace: str,
        route: str,
        blue_service: str,
        green_service: str,
        timeout_s: float = 10.0,
        accept_timeout_s: float = 60.0,
    ) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.route = route
        self.services = {"blue": blue_service, "green": green_service}
        self.timeout_s = timeout_s
        self.accept_timeout_s = accept_timeout_s

    def describe(self) -> str:
        return f"HTTPRoute {self.namespace}/{self.route}"

    def get_weights(self) -> Weights:
        splits = {self._percent(blue, green) for blue, green in self._carried_weights(self._read())}
        if len(splits) > 1:
            raise RouterError(f"{self.describe()} rules disagree: {', '.join(sorted(map(str, splits)))}")
        return splits.pop()

    def set_weights(self, weights: Weights) -> bool:
        route = self._read()
        if all(self._holds(blue, green, weights) for blue, green in self._carried_weights(route)):
            return False
        rules = [self._weighted(rule, weights) for rule in route["spec"]["rules"]]
        patch = {"metadata": {"resourceVersion": route["metadata"]["resourceVersion"]}, "spec": {"rules": rules}}
        written = self._call("patch", self.api.patch_namespaced_custom_object, patch)
        self._await_accepted(written["metadata"]["generation"], weights)
        return True

    def _await_accepted(self, generation: int, wanted: Weights) -> None:
        """Poll the route until every parent reports it Accepted at ``generation`` or later."""
        polling = Retrying(stop=stop_after_delay(self.accept_timeout_s), wait=wait_fixed(0.5),
                           retry=retry_if_result(lambda route: not _accepted(route, generation)))
        try:
            polling(self._read)
        except RetryError as exc:
            route = exc.last_attempt.result()
            raise RouterError(
                f"{self.describe()} generation {generation} ({wanted}) not accepted by the Gateway controller within "
                f"{self.accept_timeout_s:g}s: {_parents_seen(route)}"
            ) from None

    def _read(self) -> dict:
        return self._call("get", self.api.get_namespaced_custom_object)

    def _colour(self, backend_ref: dict) -> str | None:
        if backend_ref.get("kind", "Service") != "Service" or backend_ref.get("group", "") != "":
            return None
        return next((colour for colour, name in self.services.items() if backend_ref.get("name") == name), None)

    def _backend_weights(self, rule: dict) -> dict[str, Any]:
        """Blue's and green's weights in ``rule``; a backendRef without one weighs 1, as the Gateway API says."""
        refs = rule.get("backendRefs") or []
        return {colour: ref.get("weight", 1) for ref in refs if (colour := self._colour(ref))}

    def _carried_weights(self, route: dict) -> list[tuple[Any, Any]]:
        pairs = [(found["blue"], found["green"]) for rule in route.get("spec", {}).get("rules") or []
                 if len(found := self._backend_weights(rule)) == 2]
        if not pairs:
            raise RouterError(
                f"{self.describe()} has no rule with backendRefs to both {self.services['blue']} and "
                f"{self.services['green']}"
            )
        return pairs

    def _percent(self, blue: Any, green: Any) -> Weights:
        if not all(type(weight) is int and weight >= 0 for weight in (blue, green)):
            raise RouterError(f"{self.describe()} holds invalid weights {blue!r}/{green!r}")
        if blue + green == 0:
            raise RouterError(f"{self.describe()} sends no traffic to blue or green (weights 0/0)")
        blue_percent = round(100 * blue / (blue + green))
        return Weights(blue_percent, 100 - blue_percent)

    def _holds(self, blue: Any, green: Any, weights: Weights) -> bool:
        with contextlib.suppress(RouterError):  # a rule in a broken state is overwritten
            return self._percent(blue, green) == weights
        return False

    def _weighted(self, rule: dict, weights: Weights) -> dict:
        if len(self._backend_weights(rule)) < 2:
            return rule
        wanted = {"blue": weights.blue, "green": weights.green}
        refs = [{**ref, "weight": wanted[colour]} if (colour := self._colour(ref)) else ref
                for ref in rule["backendRefs"]]
        return {**rule, "backendRefs": refs}

    def _call(self, verb: str, method, *body: dict) -> dict:
        return call_api(self.describe(), verb, method, GROUP, VERSION, self.namespace, PLURAL, self.route, *body,
                        timeout_s=self.timeout_s)


def _accepted(route: dict, generation: int) -> bool:
    """Every parent in the route's status has Accepted=True observed at ``generation`` or later (at least one)."""
    parents = (route.get("status") or {}).get("parents") or []
    return bool(parents) and all(
        any(condition.get("type") == "Accepted" and condition.get("status") == "True"
            and condition.get("observedGeneration", 0) >= generation for condition in parent.get("conditions") or [])
        for parent in parents
    )


def _parents_seen(route: dict) -> str:
    parents = (route.get("status") or {}).get("parents") or []
    if not parents:
        return "no parent status"
    return "; ".join(
        f"{(parent.get('parentRef') or {}).get('name', '?')}: " + ", ".join(
            f"{c.get('type')}={c.get('status')} at generation {c.get('observedGeneration')}"
            + (f" ({c['message']})" if c.get("message") else "") for c in parent.get("conditions") or []
        ) for parent in parents
    )
