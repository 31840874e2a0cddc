"""Blue and green as Deployments on a Kubernetes cluster, through the official ``kubernetes`` client.

A colour's Deployment is rendered from ``deploy/kubernetes/deployment.yaml.tmpl`` with the image pinned by digest
and carries the sha256 of what was rendered as an annotation. ``deploy`` creates it; when it exists, it is replaced
only if that hash, the replica count or the image differ, so a retried task changes nothing twice. Transient API
answers (429, 5xx) and transport errors are retried a few times with a short backoff; every other failure is a
DeployError naming the object and the API's status."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from string import Template
from typing import Any

import yaml
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from sap_llm_release.deployers.base import Colour, Deployer, DeployError
from sap_llm_release.kubernetes_settings import KubernetesSettings, check_image_reference
from sap_llm_release.polling import poll_until

SPEC_HASH_ANNOTATION = "sap-llm-release/spec-sha256"
VERSION_LABEL = "app.kubernetes.io/version"
CONTAINER = "sap-llm"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
CONFLICT_ATTEMPTS = 3


def describe_api_error(exc: Exception) -> str:
    """``<status> <reason>: <the API's message>`` for an ApiException, the error itself for a transport failure."""
    status = getattr(exc, "status", None)
    if status is None:
        return repr(exc)
    body = getattr(exc, "body", None) or b""
    try:
        message = str(json.loads(body)["message"])
    except (ValueError, TypeError, KeyError):
        message = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return f"{status} {exc.reason}: {message[:300]}".rstrip(": ")


def render_deployment(settings: KubernetesSettings, slot: str, version: str) -> dict:
    """The Deployment of ``slot`` running ``version``, with the hash of its content as an annotation."""
    try:
        image = check_image_reference(settings.image_for(version))
    except KeyError:
        raise DeployError(
            f"version {version!r} has no image digest in the Kubernetes settings (known: {sorted(settings.versions)})"
        ) from None
    except ValueError as exc:
        raise DeployError(f"version {version!r}: {exc}") from None
    values = {
        "name": settings.deployment_name(slot), "namespace": settings.namespace, "app": settings.app, "slot": slot,
        "version": version, "image": image, "replicas": settings.replicas, "gpus": str(settings.gpus),
        "node_selector": settings.node_selector, "tolerations": settings.gpu_tolerations,
        "model_pvc": settings.model_pvc,
        "model_sub_path": f"sap-llm/{version}", "service_account": settings.service_account,
        "api_keys_secret": settings.api_keys_secret, "db_credentials_secret": settings.db_credentials_secret,
        "environment": settings.environment, "log_level": settings.log_level,
    }
    try:
        template = Template(settings.deployment_template.read_text())
        manifest = yaml.safe_load(template.substitute({name: json.dumps(value) for name, value in values.items()}))
    except (OSError, KeyError, ValueError, yaml.YAMLError) as exc:
        raise DeployError(f"cannot render {settings.deployment_template}: {exc!r}") from None
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
    manifest["metadata"].setdefault("annotations", {})[SPEC_HASH_ANNOTATION] = digest
    return manifest


def _fingerprint(deployment: dict) -> tuple:
    """What decides whether a live Deployment must be rewritten: the rendered hash, replicas and images."""
    annotations = deployment.get("metadata", {}).get("annotations") or {}
    spec = deployment.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return annotations.get(SPEC_HASH_ANNOTATION), spec.get("replicas"), [c.get("image") for c in containers]


def rollout_state(deployment: dict) -> tuple[bool, str]:
    """``(done, what was seen)``: done when the controller saw the latest spec and every wanted replica is updated
    and ready."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    wanted, generation = spec.get("replicas", 1), deployment["metadata"].get("generation", 0)
    observed, ready, updated = (status.get(key) or 0 for key in ("observedGeneration", "readyReplicas",
                                                                 "updatedReplicas"))
    seen = f"generation {generation} observed {observed}, {ready}/{wanted} ready, {updated}/{wanted} updated"
    return wanted > 0 and observed >= generation and ready == wanted and updated == wanted, seen


def stalled_reason(deployment: dict) -> str | None:
    """The controller's message once the rollout passed its progress deadline: waiting longer will not help."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return condition.get("message") or "progress deadline exceeded"
    return None


class KubernetesDeployer(Deployer):
    """``api_client`` is a ``kubernetes.client.ApiClient`` (in-cluster or kube_config); ``slots`` maps roles to
    slots as on the local target (by default each onto itself)."""

    def __init__(
        self,
        settings: KubernetesSettings,
        api_client: Any,
        *,
        slots: dict[str, str] | None = None,
        poll_interval_s: float = 2.0,
        request_timeout_s: float = 10.0,
        attempts: int = 4,
        backoff_s: float = 0.25,
    ) -> None:
        from kubernetes import client

        self.settings = settings
        self.slots = slots or {"blue": "blue", "green": "green"}
        self.poll_interval_s = poll_interval_s
        self.request_timeout_s = request_timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)

    def _name(self, colour: Colour) -> str:
        return self.settings.deployment_name(self.slots[colour])

    def _describe(self, colour: Colour) -> str:
        return f"deployment {self.settings.namespace}/{self._name(colour)}"

    def _call(self, what: str, method: Callable, *args: Any, absent: tuple[int, ...] = (), **kwargs: Any) -> Any:
        """The raw body ``method`` answered, or None for a status in ``absent``; transient failures are retried
        with backoff, anything else is a DeployError naming ``what``."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        def transient(exc: BaseException) -> bool:  # refused, reset, timed out, or a status worth another try
            return isinstance(exc, HTTPError) or isinstance(exc, ApiException) and exc.status in TRANSIENT_STATUSES

        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=wait_exponential(multiplier=self.backoff_s),
                            retry=retry_if_exception(transient), reraise=True)
        try:
            return retrying(lambda: method(*args, _preload_content=False, _request_timeout=self.request_timeout_s,
                                           **kwargs).data)
        except ApiException as exc:
            if exc.status in absent:
                return None
            tries = retrying.statistics.get("attempt_number", 1)
            raise DeployError(f"{what} failed{f' after {tries} tries' if tries > 1 else ''}: "
                              f"{describe_api_error(exc)}") from None
        except HTTPError as exc:
            raise DeployError(f"{what} failed after {retrying.statistics.get('attempt_number', 1)} tries: "
                              f"{exc!r}") from None

    def _read(self, colour: Colour) -> dict | None:
        body = self._call(f"{self._describe(colour)}: read", self._apps.read_namespaced_deployment,
                          self._name(colour), self.settings.namespace, absent=(404,))
        return None if body is None else json.loads(body)

    def deploy(self, colour: Colour, version: str) -> bool:
        """Create or replace the slot's Deployment until it is the desired one; True when this call wrote it. Read
        first: a write whose answer was lost (a timeout, then a retry that conflicts) is found applied on the next
        read, and counts as this call's change."""
        desired = render_deployment(self.settings, self.slots[colour], version)
        what, name, namespace = self._describe(colour), self._name(colour), self.settings.namespace
        wrote = False
        for _ in range(CONFLICT_ATTEMPTS):
            live = self._read(colour)
            if live is not None and _fingerprint(live) == _fingerprint(desired):
                return wrote
            wrote = True
            if live is None:
                written = self._call(f"{what}: create", self._apps.create_namespaced_deployment, namespace, desired,
                                     absent=(409,))
            else:
                metadata = desired["metadata"]
                replacement = {**desired, "metadata": {
                    **metadata, "resourceVersion": live["metadata"]["resourceVersion"],
                    "annotations": {**(live["metadata"].get("annotations") or {}), **metadata["annotations"]}}}
                written = self._call(f"{what}: replace", self._apps.replace_namespaced_deployment, name, namespace,
                                     replacement, absent=(409,))
            if written is not None:
                return True
        raise DeployError(f"{what}: changed by someone else on each of {CONFLICT_ATTEMPTS} tries to apply it")

    def wait_ready(self, colour: Colour, timeout_s: float) -> tuple[bool, str]:
        """Poll the Deployment every ``poll_interval_s`` until its rollout is done, has stalled or is gone, for at
        most ``timeout_s``."""
        def state() -> tuple[bool | None, str]:
            live = self._read(colour)
            if live is None:
                return False, f"{self._describe(colour)} not found"
            done, seen = rollout_state(live)
            if done:
                return True, f"{self._describe(colour)}: {seen}"
            if stalled := stalled_reason(live):
                return False, f"{self._describe(colour)} rollout stalled: {seen}; {stalled}"
            return None, seen

        ready, seen = poll_until(state, lambda result: result[0] is not None, timeout_s=timeout_s,
                                 interval_s=self.poll_interval_s)
        if ready is None:
            return False, f"{self._describe(colour)} not ready after {timeout_s:g}s: {seen}"
        return ready, seen

    def remove(self, colour: Colour) -> bool:
        live = self._read(colour)
        if live is None:
            return False
        what, name, namespace = self._describe(colour), self._name(colour), self.settings.namespace
        running = bool(live["spec"].get("replicas") or (live.get("status") or {}).get("replicas"))
        if self.settings.on_remove == "delete":
            self._call(f"{what}: delete", self._apps.delete_namespaced_deployment, name, namespace, absent=(404,))
        elif live["spec"].get("replicas"):
            self._call(f"{what}: scale to 0", self._apps.patch_namespaced_deployment, name, namespace,
                       {"spec": {"replicas": 0}}, absent=(404,))
        return running

    def running_version(self, colour: Colour) -> str | None:
        live = self._read(colour)
        if live is None or not live["spec"].get("replicas"):
            return None
        return (live["metadata"].get("labels") or {}).get(VERSION_LABEL)

    def logs(self, colour: Colour) -> str:
        """The logs of the pods of the version ``colour`` runs now, one after the other."""
        version = self.running_version(colour)
        if version is None:
            return ""
        namespace = self.settings.namespace
        selector = f"app={self.settings.app},version={self.slots[colour]},{VERSION_LABEL}={version}"
        pods = json.loads(self._call(f"pods {namespace}/{selector}: list", self._core.list_namespaced_pod,
                                     namespace, label_selector=selector))
        texts = []
        for name in sorted(pod["metadata"]["name"] for pod in pods.get("items") or []):
            # 400: the container has not started yet; 404: the pod is gone
            text = self._call(f"pod {namespace}/{name}: log", self._core.read_namespaced_pod_log, name, namespace,
                              container=CONTAINER, absent=(400, 404))
            texts.append((text or b"").decode(errors="replace"))
        return "".join(texts)
