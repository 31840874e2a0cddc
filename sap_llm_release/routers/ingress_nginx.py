"""An ingress-nginx canary: green's Ingress carries the canary annotations, and its weight is green's share."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sap_llm_release.routers.base import Router, RouterError, Weights
from sap_llm_release.routers.kubernetes_api import call_api

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Ingress

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
CANARY_WEIGHT_TOTAL = "nginx.ingress.kubernetes.io/canary-weight-total"


class IngressCanaryRouter(Router):
    """Routes through green's canary Ingress; blue's primary Ingress is left alone (it takes what the canary leaves)."""

    def __init__(self, api_client: ApiClient, *, namespace: str, canary_ingress: str, timeout_s: float = 10.0) -> None:
        from kubernetes import client

        self.api = client.NetworkingV1Api(api_client)
        self.namespace = namespace
        self.canary_ingress = canary_ingress
        self.timeout_s = timeout_s

    def describe(self) -> str:
        return f"Ingress {self.namespace}/{self.canary_ingress} (ingress-nginx canary)"

    def get_weights(self) -> Weights:
        return self._split(self._annotations(self._read()))

    def set_weights(self, weights: Weights) -> bool:
        ingress = self._read()
        annotations = self._annotations(ingress)
        with contextlib.suppress(RouterError):  # a canary in a broken state is overwritten
            if self._split(annotations) == weights:
                return False
        wanted = {CANARY: "true", CANARY_WEIGHT: str(weights.green)}
        if annotations.get(CANARY_WEIGHT_TOTAL, "100") != "100":
            wanted[CANARY_WEIGHT_TOTAL] = "100"
        patch = {"metadata": {"resourceVersion": ingress.metadata.resource_version, "annotations": wanted}}
        self._call("patch", self.api.patch_namespaced_ingress, patch)
        return True

    def _read(self) -> V1Ingress:
        return self._call("get", self.api.read_namespaced_ingress)

    @staticmethod
    def _annotations(ingress: V1Ingress) -> dict[str, str]:
        return ingress.metadata.annotations or {}

    def _split(self, annotations: dict[str, str]) -> Weights:
        if annotations.get(CANARY) != "true":
            raise RouterError(f"{self.describe()} is not a canary: {CANARY} is {annotations.get(CANARY)!r}")
        weight, total = annotations.get(CANARY_WEIGHT, "0"), annotations.get(CANARY_WEIGHT_TOTAL, "100")
        if not (weight.isdigit() and total.isdigit() and 0 <= int(weight) <= int(total) and int(total) > 0):
            raise RouterError(f"{self.describe()} holds an invalid canary weight {weight!r} of {total!r}")
        green = round(100 * int(weight) / int(total))
        return Weights(100 - green, green)

    def _call(self, verb: str, method, *body: dict):
        return call_api(self.describe(), verb, method, self.canary_ingress, self.namespace, *body,
                        timeout_s=self.timeout_s)
