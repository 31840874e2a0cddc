"""The checklist's cutover and rollback switch: a Service selecting ``version: blue`` or ``version: green``."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from sap_llm_release.routers.base import ALL_BLUE, Router, RouterError, Weights
from sap_llm_release.routers.kubernetes_api import call_api

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, V1Service

ALL_GREEN = Weights(0, 100)
ROLE_OF = {ALL_BLUE: "blue", ALL_GREEN: "green"}


class ServiceSelectorRouter(Router):
    """Sends all traffic to the slot the Service's ``spec.selector.version`` names; no split in between. ``slots``
    maps the roles (blue: production, green: the new version) to the slots' labels (by default each onto itself)."""

    def __init__(self, api_client: ApiClient, *, namespace: str, service: str, timeout_s: float = 10.0,
                 slots: dict[str, str] | None = None) -> None:
        from kubernetes import client

        self.api = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.service = service
        self.timeout_s = timeout_s
        self.slots = slots or {"blue": "blue", "green": "green"}

    def describe(self) -> str:
        return f"Service {self.namespace}/{self.service} (selector version)"

    def get_weights(self) -> Weights:
        return self._split(self._read())

    def set_weights(self, weights: Weights) -> bool:
        if weights not in ROLE_OF:
            raise RouterError(f"{self.describe()} switches all traffic at once: it cannot apply {weights}")
        service = self._read()
        with contextlib.suppress(RouterError):  # a selector naming neither colour is overwritten
            if self._split(service) == weights:
                return False
        patch = {
            "metadata": {"resourceVersion": service.metadata.resource_version},
            "spec": {"selector": {"version": self.slots[ROLE_OF[weights]]}},
        }
        self._call("patch", self.api.patch_namespaced_service, patch)
        return True

    def _read(self) -> V1Service:
        return self._call("get", self.api.read_namespaced_service)

    def _split(self, service: V1Service) -> Weights:
        version = (service.spec.selector or {}).get("version")
        for weights, role in ROLE_OF.items():
            if version == self.slots[role]:
                return weights
        raise RouterError(f"{self.describe()} selects version {version!r}, neither blue nor green")

    def _call(self, verb: str, method, *body: dict):
        return call_api(self.describe(), verb, method, self.service, self.namespace, *body, timeout_s=self.timeout_s)
