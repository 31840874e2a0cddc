"""The cluster itself, asked through the Kubernetes API (the official ``kubernetes`` client): the production
namespace, GPU nodes, persistent storage, network policies, secrets and a TLS certificate, service accounts and role
bindings (checklist sections 3 and 4). An API that cannot be asked fails the gate with the reason; a target with no
cluster configured cannot be checked.

Secret values are never kept, logged or shown: a secret is read, its values dropped at once (all but a TLS secret's
``tls.crt``, which is public), and only its type and how many keys it holds are used."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import Field, model_validator

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.deployers.kubernetes import describe_api_error
from sap_llm_release.evidence import Evidence, Threshold

NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
USABLE_VOLUME_PHASES = ("Available", "Bound")


@dataclass(frozen=True)
class KubernetesAccess:
    """How checks reach the cluster: a ``kubernetes.client.ApiClient`` and the release's namespace."""

    api_client: Any
    namespace: str
    request_timeout_s: float = 10.0


class KubernetesUnreachable(RuntimeError):
    """The API did not answer what a check asked."""


def _ask(access: KubernetesAccess, what: str, api: str, method: str, *args: Any, missing_ok: bool = False,
         **kwargs: Any) -> dict | None:
    """The JSON that ``kubernetes.client.<api>.<method>`` answered; None for a 404 when ``missing_ok``."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    call = getattr(getattr(client, api)(access.api_client), method)
    try:
        response = call(*args, _preload_content=False, _request_timeout=access.request_timeout_s, **kwargs)
    except ApiException as exc:
        if exc.status == 404 and missing_ok:
            return None
        raise KubernetesUnreachable(f"{what} failed: {describe_api_error(exc)}") from None
    except HTTPError as exc:
        raise KubernetesUnreachable(f"{what} failed: {exc!r}") from None
    return json.loads(response.data)


def _read_secret(access: KubernetesAccess, namespace: str, name: str, keep: str | None = None) -> dict | None:
    """``{type, keys, kept}`` of a secret: its type, how many keys it holds and the value of ``keep`` (base64);
    every other value, and the metadata that may repeat them, is dropped here."""
    secret = _ask(access, f"secret {namespace}/{name}: read", "CoreV1Api", "read_namespaced_secret", name,
                  namespace, missing_ok=True)
    if secret is None:
        return None
    data = secret.get("data") or {}
    return {"type": secret.get("type"), "keys": len(data), "kept": data.get(keep) if keep else None}


def _quantity(value: Any) -> float:
    """A Kubernetes quantity (``2Ti``, ``500G``, ``250m``, ``1``) as a number; ValueError when it is none."""
    from kubernetes.utils.quantity import parse_quantity

    return float(parse_quantity(value))


class KubernetesParams(Params):
    namespace: str | None = Field(default=None, pattern=NAME, description="default: the target's namespace")


class KubernetesCheck(Check):
    """A check that asks the cluster; an API failure fails the gate with the reason."""

    def run(self, params: Any, threshold: Threshold | None, context: CheckContext) -> Evidence:
        access = context.require("kubernetes")
        try:
            return self.measure(params, threshold, access, getattr(params, "namespace", None) or access.namespace)
        except KubernetesUnreachable as exc:
            return Evidence.unmeasured(threshold, str(exc))

    def measure(self, params: Any, threshold: Threshold, access: KubernetesAccess, namespace: str) -> Evidence:
        raise NotImplementedError


class KubernetesNamespace(KubernetesCheck):
    """Measured: 1 when the namespace exists and is Active, else 0."""

    Params = KubernetesParams

    def measure(self, params: KubernetesParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        found = _ask(access, f"namespace {namespace}: read", "CoreV1Api", "read_namespace", namespace,
                     missing_ok=True)
        if found is None:
            return Evidence.compare(0, threshold, f"namespace {namespace} not found")
        phase = (found.get("status") or {}).get("phase")
        return Evidence.compare(int(phase == "Active"), threshold, f"namespace {namespace} is {phase}")


class KubernetesGpuNodesParams(Params):
    accepted_models: list[str] = Field(
        min_length=1, description="GPU products a node may carry, as its product label names them (NVIDIA-A100 "
                                  "also accepts NVIDIA-A100-SXM4-80GB, never NVIDIA-A1000)")
    product_label: str = Field(default="nvidia.com/gpu.product", min_length=1,
                               description="the node label naming the GPU product (NVIDIA GPU feature discovery's)")
    label_selector: str = Field(default="", description="only these nodes, e.g. node-role/gpu=true")
    resource: str = Field(default="nvidia.com/gpu", min_length=1)


def accepted_model(product: str, accepted: list[str]) -> bool:
    """The product is an accepted model itself or one of its variants (the model, a dash, the variant)."""
    return any(product == model or product.startswith(f"{model}-") for model in accepted)


def _gpu_node(node: dict, params: KubernetesGpuNodesParams) -> tuple[bool, str]:
    """``(counts, description)``: a node counts when it is Ready, schedulable, has ``resource`` allocatable and its
    product label names an accepted GPU model."""
    resource = params.resource
    name, labels = node["metadata"]["name"], node["metadata"].get("labels") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or [])
    try:
        gpus = _quantity(((node.get("status") or {}).get("allocatable") or {}).get(resource, "0"))
    except ValueError:
        return False, f"{name} unreadable allocatable {resource}"
    product = labels.get(params.product_label, "")
    described = f"{name} ({gpus:g} {resource}{', ' + product if product else ''})"
    if gpus <= 0:
        return False, f"{name} has no {resource}"
    if not ready:
        return False, f"{described} not Ready"
    if (node.get("spec") or {}).get("unschedulable"):
        return False, f"{described} cordoned"
    if not product:
        return False, f"{described} has no {params.product_label} label: GPU model unknown"
    if not accepted_model(product, params.accepted_models):
        return False, f"{described} is not an accepted model ({', '.join(params.accepted_models)})"
    return True, described


class KubernetesGpuNodes(KubernetesCheck):
    """Measured: how many Ready, schedulable nodes of an accepted GPU model have ``resource`` allocatable; the
    detail lists every node."""

    Params = KubernetesGpuNodesParams

    def measure(self, params: KubernetesGpuNodesParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        nodes = _ask(access, "nodes: list", "CoreV1Api", "list_node", label_selector=params.label_selector)
        seen = [_gpu_node(node, params) for node in nodes.get("items") or []]
        counted = [text for counts, text in seen if counts]
        others = [text for counts, text in seen if not counts]
        scope = f" with {params.label_selector}" if params.label_selector else ""
        models = "/".join(params.accepted_models)
        detail = (f"{len(counted)} of {len(seen)} nodes{scope} ready with {params.resource} ({models}): "
                  f"{', '.join(counted) or 'none'}" + (f"; not counted: {', '.join(others)}" if others else ""))
        return Evidence.compare(len(counted), threshold, detail)


class KubernetesStorageParams(Params):
    storage_class: str | None = Field(default=None, description="only persistent volumes of this storage class")


class KubernetesStorage(KubernetesCheck):
    """Measured: the capacity in bytes of the persistent volumes (of ``storage_class``) that are Available or Bound
    (a Released or Failed volume holds nothing usable)."""

    Params = KubernetesStorageParams

    def measure(self, params: KubernetesStorageParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        volumes = _ask(access, "persistent volumes: list", "CoreV1Api", "list_persistent_volume")
        chosen = [pv for pv in volumes.get("items") or [] if params.storage_class in
                  (None, (pv.get("spec") or {}).get("storageClassName"))]
        total, counted, skipped = 0, 0, []
        for pv in chosen:
            name, phase = pv["metadata"]["name"], (pv.get("status") or {}).get("phase")
            capacity = ((pv.get("spec") or {}).get("capacity") or {}).get("storage")
            if phase not in USABLE_VOLUME_PHASES:
                skipped.append(f"{name} {phase}")
                continue
            try:
                total += int(_quantity(capacity))
            except ValueError:
                skipped.append(f"{name} capacity {capacity!r} unreadable")
                continue
            counted += 1
        scope = f" of class {params.storage_class}" if params.storage_class else ""
        detail = f"{counted} persistent volumes{scope} Available or Bound: {total / 1e12:.2f} TB" + (
            f"; not counted: {', '.join(skipped)}" if skipped else "")
        return Evidence.compare(total, threshold, detail)


class KubernetesNetworkPolicies(KubernetesCheck):
    """Measured: how many NetworkPolicies the namespace has."""

    Params = KubernetesParams

    def measure(self, params: KubernetesParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        policies = _ask(access, f"network policies in {namespace}: list", "NetworkingV1Api",
                        "list_namespaced_network_policy", namespace)
        names = sorted(policy["metadata"]["name"] for policy in policies.get("items") or [])
        detail = f"{len(names)} network policies in {namespace}: {', '.join(names) or 'none'}"
        return Evidence.compare(len(names), threshold, detail)


class KubernetesSecretsParams(KubernetesParams):
    names: list[str] = Field(min_length=1, description="secrets that must exist with at least one key")


class KubernetesSecrets(KubernetesCheck):
    """Measured: how many of the named secrets are missing or empty. Only their type and key count are looked at."""

    Params = KubernetesSecretsParams

    def measure(self, params: KubernetesSecretsParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        missing, seen = 0, []
        for name in params.names:
            secret = _read_secret(access, namespace, name)
            if secret is None or not secret["keys"]:
                missing += 1
                seen.append(f"{name} {'missing' if secret is None else 'empty'}")
            else:
                seen.append(f"{name} present ({secret['type']}, {secret['keys']} keys)")
        detail = f"{len(params.names) - missing} of {len(params.names)} secrets in {namespace}: {'; '.join(seen)}"
        return Evidence.compare(missing, threshold, detail)


class KubernetesTlsSecretParams(KubernetesParams):
    name: str = Field(pattern=NAME, description="a kubernetes.io/tls secret")


class KubernetesTlsSecret(KubernetesCheck):
    """Measured: days left until the certificate in a ``kubernetes.io/tls`` secret's ``tls.crt`` (its first, the
    leaf) expires; the private key is never read."""

    Params = KubernetesTlsSecretParams

    def measure(self, params: KubernetesTlsSecretParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        from cryptography import x509

        where = f"secret {namespace}/{params.name}"
        secret = _read_secret(access, namespace, params.name, keep="tls.crt")
        if secret is None:
            return Evidence.unmeasured(threshold, f"{where} not found")
        if secret["type"] != "kubernetes.io/tls" or not secret["kept"]:
            return Evidence.unmeasured(threshold,
                            f"{where} is of type {secret['type']}, not kubernetes.io/tls with a tls.crt")
        try:
            certificate = x509.load_pem_x509_certificates(base64.b64decode(secret["kept"]))[0]
        except ValueError as exc:
            return Evidence.unmeasured(threshold, f"{where} tls.crt is not a PEM certificate: {exc}")
        not_after = certificate.not_valid_after_utc
        days_left = (not_after - datetime.now(timezone.utc)).total_seconds() / 86400
        detail = (f"{where}: subject {certificate.subject.rfc4514_string()}, issuer "
                  f"{certificate.issuer.rfc4514_string()}, notAfter {not_after.isoformat()}")
        return Evidence.compare(round(days_left, 2), threshold, detail)


class KubernetesRbacParams(KubernetesParams):
    service_accounts: list[str] = Field(default_factory=list)
    role_bindings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_something(self) -> KubernetesRbacParams:
        if not self.service_accounts and not self.role_bindings:
            raise ValueError("name at least one of service_accounts, role_bindings")
        return self


class KubernetesRbac(KubernetesCheck):
    """Measured: how many of the named ServiceAccounts and RoleBindings are missing from the namespace."""

    Params = KubernetesRbacParams

    def measure(self, params: KubernetesRbacParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        wanted = [("ServiceAccount", name, "CoreV1Api", "read_namespaced_service_account")
                  for name in params.service_accounts]
        wanted += [("RoleBinding", name, "RbacAuthorizationV1Api", "read_namespaced_role_binding")
                   for name in params.role_bindings]
        missing, seen = 0, []
        for kind, name, api, method in wanted:
            found = _ask(access, f"{kind} {namespace}/{name}: read", api, method, name, namespace, missing_ok=True)
            if found is None:
                missing += 1
                seen.append(f"{kind} {name} missing")
            elif kind == "RoleBinding":
                role = found.get("roleRef") or {}
                seen.append(f"{kind} {name} present (binds {role.get('kind')} {role.get('name')})")
            else:
                seen.append(f"{kind} {name} present")
        detail = f"{len(wanted) - missing} of {len(wanted)} present in {namespace}: {'; '.join(seen)}"
        return Evidence.compare(missing, threshold, detail)
