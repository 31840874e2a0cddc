"""The cluster's security posture as the monthly audit judges it (checklist section 10, "Monthly: security audit"):
images pinned by digest, secrets rotated within the policy, and RBAC as committed in ``deploy/kubernetes/``. Asked
through the Kubernetes API like the release's cluster checks (:mod:`sap_llm_release.checks.kubernetes`), and like
them usable as gates.

A secret's values are never read into the evidence: only its creation time and its rotation annotation."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from sap_llm_release.checks.base import Params
from sap_llm_release.checks.kubernetes import NAME, KubernetesAccess, KubernetesCheck, KubernetesParams, _ask
from sap_llm_release.evidence import Evidence, Threshold

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
ROTATED_AT = "sap-llm.io/rotated-at"


class ImageDigestsParams(KubernetesParams):
    label_selector: str = Field(default="", description="only Deployments with these labels (default: all)")


class KubernetesImageDigests(KubernetesCheck):
    """Measured: how many containers (init containers too) of the namespace's Deployments run an image not pinned by
    digest (``repository@sha256:...``): a tag can be moved to other bytes, a digest cannot. No Deployment at all is
    nothing measured."""

    Params = ImageDigestsParams

    def measure(self, params: ImageDigestsParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        listed = _ask(access, f"deployments in {namespace}: list", "AppsV1Api", "list_namespaced_deployment",
                      namespace, label_selector=params.label_selector)
        deployments = listed.get("items") or []
        scope = f" with {params.label_selector}" if params.label_selector else ""
        if not deployments:
            return Evidence.unmeasured(threshold, f"no Deployment{scope} in {namespace}")
        containers = [(deployment["metadata"]["name"], container) for deployment in deployments
                      for section in ("initContainers", "containers")
                      for container in deployment["spec"]["template"]["spec"].get(section) or []]
        unpinned = [f"{name}/{container['name']}: {container.get('image')}" for name, container in containers
                    if not DIGEST.search(container.get("image") or "")]
        detail = (f"{len(containers) - len(unpinned)} of {len(containers)} containers of {len(deployments)} "
                  f"Deployments{scope} in {namespace} pinned by digest")
        return Evidence.compare(len(unpinned), threshold, detail + (f"; by tag: {', '.join(unpinned)}"
                                                                    if unpinned else ""))


class SecretAgeParams(KubernetesParams):
    names: list[str] = Field(min_length=1, description="secrets whose age is held to the rotation policy")
    rotated_annotation: str = Field(default=ROTATED_AT, description="annotation holding the last rotation (ISO "
                                    "8601); without it the secret's creation time counts")


class KubernetesSecretAge(KubernetesCheck):
    """Measured: days since the oldest of the named secrets was last rotated (its rotation annotation, else its
    creation time); held to the rotation policy's maximum age. A missing secret, or a rotation time that cannot be
    read, is nothing measured."""

    Params = SecretAgeParams

    def measure(self, params: SecretAgeParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        now, ages, seen = datetime.now(timezone.utc), [], []
        for name in params.names:
            found = _ask(access, f"secret {namespace}/{name}: read", "CoreV1Api", "read_namespaced_secret", name,
                         namespace, missing_ok=True)
            if found is None:
                return Evidence.unmeasured(threshold, f"secret {namespace}/{name} not found")
            metadata = found.get("metadata") or {}
            rotated = (metadata.get("annotations") or {}).get(params.rotated_annotation)
            source = params.rotated_annotation if rotated else "creationTimestamp"
            try:
                at = datetime.fromisoformat((rotated or metadata["creationTimestamp"]).replace("Z", "+00:00"))
            except (KeyError, ValueError) as exc:
                return Evidence.unmeasured(threshold, f"secret {namespace}/{name}: no readable {source} ({exc})")
            at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
            ages.append((now - at).total_seconds() / 86400)
            seen.append(f"{name} {ages[-1]:.0f} d (since {at:%Y-%m-%d}, {source})")
        return Evidence.compare(round(max(ages), 2), threshold, f"oldest of {len(ages)} secrets in {namespace}; "
                                                               + "; ".join(seen))


class RbacDriftParams(Params):
    manifest: str = Field(default="deploy/kubernetes/rbac.yaml", description="the committed RBAC objects, relative "
                          "to the project's root (their namespace is taken as the target's)")
    namespace: str | None = Field(default=None, pattern=NAME, description="default: the target's namespace")


# What makes two RBAC objects grant the same: a Role's rules, a binding's role and subjects, an account's token mount.
_GRANTS = {"ServiceAccount": ("automountServiceAccountToken",), "Role": ("rules",), "ClusterRole": ("rules",),
           "RoleBinding": ("roleRef", "subjects"), "ClusterRoleBinding": ("roleRef", "subjects")}
_READ = {"ServiceAccount": ("CoreV1Api", "read_namespaced_service_account"),
         "Role": ("RbacAuthorizationV1Api", "read_namespaced_role"),
         "RoleBinding": ("RbacAuthorizationV1Api", "read_namespaced_role_binding"),
         "ClusterRole": ("RbacAuthorizationV1Api", "read_cluster_role"),
         "ClusterRoleBinding": ("RbacAuthorizationV1Api", "read_cluster_role_binding")}


class KubernetesRbacDrift(KubernetesCheck):
    """Measured: how many of the committed RBAC objects the cluster lacks or holds with other grants (rules, role
    reference, subjects, token mount), plus the namespace's RoleBindings the manifest does not have that bind one of
    its ServiceAccounts (privileges added by hand). Each drifted object is named with what differs."""

    Params = RbacDriftParams

    def measure(self, params: RbacDriftParams, threshold: Threshold, access: KubernetesAccess,
                namespace: str) -> Evidence:
        committed = _committed_objects(PROJECT_ROOT / params.manifest, namespace)
        drifted = [found for wanted in committed if (found := _drift(access, wanted, namespace))]
        accounts = {obj["metadata"]["name"] for obj in committed if obj["kind"] == "ServiceAccount"}
        known = {obj["metadata"]["name"] for obj in committed if obj["kind"] == "RoleBinding"}
        bindings = _ask(access, f"role bindings in {namespace}: list", "RbacAuthorizationV1Api",
                        "list_namespaced_role_binding", namespace)
        for binding in bindings.get("items") or []:
            bound = {s.get("name") for s in binding.get("subjects") or [] if s.get("kind") == "ServiceAccount"}
            if binding["metadata"]["name"] not in known and bound & accounts:
                role = binding.get("roleRef") or {}
                drifted.append(f"RoleBinding {binding['metadata']['name']} not in {params.manifest} binds "
                               f"{', '.join(sorted(bound & accounts))} to {role.get('kind')} {role.get('name')}")
        detail = (f"{len(committed) - len(drifted)} of {len(committed)} objects of {params.manifest} as committed in "
                  f"{namespace}" + (f"; drift: {'; '.join(drifted)}" if drifted else ""))
        return Evidence.compare(len(drifted), threshold, detail)


def _committed_objects(path: Path, namespace: str) -> list[dict]:
    """The manifest's RBAC objects, namespaced ones moved to ``namespace`` (subjects' namespace too)."""
    objects = [obj for obj in yaml.safe_load_all(path.read_text()) if obj and obj.get("kind") in _GRANTS]
    for obj in objects:
        if "namespace" in obj["metadata"]:
            obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects") or []:
            if "namespace" in subject:
                subject["namespace"] = namespace
    return objects


def _drift(access: KubernetesAccess, wanted: dict, namespace: str) -> str | None:
    """What differs between a committed object and the cluster's, or None when it grants the same."""
    kind, name = wanted["kind"], wanted["metadata"]["name"]
    api, method = _READ[kind]
    args = (name, namespace) if method.startswith("read_namespaced") else (name,)
    found = _ask(access, f"{kind} {name}: read", api, method, *args, missing_ok=True)
    if found is None:
        return f"{kind} {name} missing"
    differs = [field for field in _GRANTS[kind] if _normalised(wanted.get(field)) != _normalised(found.get(field))]
    return f"{kind} {name} differs in {', '.join(differs)}" if differs else None


def _normalised(value: Any) -> Any:
    """A grant compared as a set: rule and subject order, and verb / resource order within a rule, do not matter;
    empty and absent are the same."""
    if isinstance(value, list):
        return sorted((_normalised(item) for item in value), key=repr)
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items() if item not in (None, [], {}, "")}
    return value
