"""A Gateway API HTTPRoute: the weights of its backendRefs to the blue and green Services split the traffic."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sap_llm_release.routers.base import Router, RouterError, Weights
from sap_llm_release.routers.kubernetes_api import call_api

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


class HTTPRouteRouter(Router):
    """Sets blue's and green's weights in every rule of the route that carries both Services, keeping the rest."""

    def __init__(
        self,
        api_client: ApiClient,
        *,
        namespace: str,
        route: str,
        blue_service: str,
        green_service: str,
        timeout_s: float = 10.0,
    ) -> None:
        from kubernetes import client

        self.api = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.route = route
        self.services = {"blue": blue_service, "green": green_service}
        self.timeout_s = timeout_s

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
        self._call("patch", self.api.patch_namespaced_custom_object, patch)
        return True

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
