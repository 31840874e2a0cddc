"""What the Kubernetes target deploys: namespace, names, image digests by release version, replicas, model volume,
GPUs and GPU nodes, read from one YAML file (``deploy/kubernetes/settings.example.yaml``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORY = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"


class KubernetesSettingsError(ValueError):
    """Settings that cannot be used; the message names each offending field and its rule."""


def check_repository(repository: str) -> str:
    """``repository`` when it names an image repository without a tag or digest."""
    if "@" in repository or ":" in repository.rsplit("/", 1)[-1]:
        raise ValueError(f"{repository!r} carries a tag or digest; give the repository alone")
    if not REPOSITORY.match(repository):
        raise ValueError(f"{repository!r} is not an image repository (registry.example.com/team/name)")
    return repository


def check_image_reference(reference: str) -> str:
    """``reference`` when it is a digest (``sha256:<64 hex>``) or ``<repository>@<digest>``; a tag is refused."""
    repository, at, digest = reference.rpartition("@")
    if DIGEST.match(digest) and (not at or check_repository(repository)):
        return reference
    raise ValueError(f"{reference!r} is not an image digest: give sha256:<64 hex> or <repository>@sha256:<64 hex>, "
                     "never a tag")


class RouterLogs(BaseModel):
    """ingress-nginx's controller pods, whose access logs (default ``upstreaminfo`` format) show what the router
    answered while a rollback switched traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(default="ingress-nginx", pattern=DNS_LABEL)
    selector: str = Field(default="app.kubernetes.io/name=ingress-nginx,app.kubernetes.io/component=controller",
                          min_length=1)
    container: str = Field(default="controller", pattern=DNS_LABEL)


class KubernetesSettings(BaseModel):
    """One release environment on a cluster. A colour's Deployment is ``<app>-<slot>``, labelled
    ``app: <app>, version: <slot>``; the version it runs is its ``app.kubernetes.io/version`` label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(default="sap-llm-prod", pattern=DNS_LABEL)
    app: str = Field(default="sap-llm", pattern=DNS_LABEL, max_length=50,
                     description="the app label and the prefix of each colour's Deployment and Service")
    image: str = Field(description="image repository without a tag, e.g. registry.example.com/sap-llm/server")
    versions: dict[str, str] = Field(min_length=1, description="release version -> image digest (sha256:<64 hex>) "
                                                               "or a full <repository>@sha256:<64 hex>")
    replicas: int = Field(default=3, ge=1, le=100)
    model_pvc: str = Field(pattern=DNS_NAME, description="PersistentVolumeClaim holding sap-llm/<version>/ with the "
                                                         "three components; mounted read-only at /models")
    gpus: int = Field(default=1, ge=1, le=8, description="nvidia.com/gpu per pod (1 A100 or 2 A10)")
    node_selector: dict[str, str] = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    service_account: str = Field(default="sap-llm", pattern=DNS_NAME)
    api_keys_secret: str = Field(default="sap-llm-api-keys", pattern=DNS_NAME)
    db_credentials_secret: str = Field(default="sap-llm-db-credentials", pattern=DNS_NAME)
    environment: str = Field(default="production", pattern=r"^[a-z][a-z0-9-]*$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    on_remove: Literal["scale_to_zero", "delete"] = "scale_to_zero"
    deployment_template: Path = DEPLOY_DIR / "deployment.yaml.tmpl"
    # how traffic is split: Gateway API HTTPRoute backend weights, ingress-nginx canary annotations, or the cutover
    # Service's selector (all or nothing); ``route`` names the HTTPRoute / green canary Ingress / Service
    router: Literal["gateway_api", "ingress_nginx", "service_selector"] = "gateway_api"
    route: str = Field(default="sap-llm", pattern=DNS_NAME)
    urls: dict[str, str] = Field(description="router and public URLs; blue/green default to each slot's Service")
    port: int = Field(default=8000, ge=1, le=65535, description="the service port of each slot's Service")
    # inference jobs as pods: the spec's job images by digest, on GPU nodes, with the model volume read-only
    job_images: dict[str, str] = Field(default_factory=dict,
                                       description="spec job image (validator, loadtest) -> <repository>@sha256:...")
    job_namespace: str | None = Field(default=None, pattern=DNS_LABEL, description="default: namespace")
    datasets_pvc: str | None = Field(default=None, pattern=DNS_NAME,
                                     description="PersistentVolumeClaim with the labelled sets, read-only at /datasets")
    gpu_tolerations: list[dict[str, str]] = Field(
        default_factory=lambda: [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        description="tolerations of the GPU nodes' taints, for the service's pods and GPU job pods")
    reports_dir: Path = Field(default=Path("/opt/airflow/reports"),
                              description="where the pipeline leaves scanner and drill reports for the gates")
    services: dict[str, str] = Field(default_factory=dict, description="backing services by name -> URL")
    prometheus_replicas: list[str] = Field(default_factory=list)
    router_logs: RouterLogs | None = Field(default=None, description="where a rollback's lost requests are "
                                           "counted; none: not counted, which fails that check")

    @field_validator("image")
    @classmethod
    def _image_is_a_repository(cls, image: str) -> str:
        return check_repository(image)

    @field_validator("versions")
    @classmethod
    def _versions_are_labels_pinned_by_digest(cls, versions: dict[str, str]) -> dict[str, str]:
        for version, reference in versions.items():
            if not LABEL_VALUE.match(version):
                raise ValueError(f"version {version!r} is not a Kubernetes label value (letters, digits, '-', '_', "
                                 "'.', at most 63, alphanumeric at both ends)")
            try:
                check_image_reference(reference)
            except ValueError as exc:
                raise ValueError(f"version {version!r}: {exc}") from None
        return versions

    @field_validator("urls")
    @classmethod
    def _urls_name_router_and_public(cls, urls: dict[str, str]) -> dict[str, str]:
        missing = sorted({"router", "public"} - set(urls))
        if missing:
            raise ValueError(f"must name the {' and '.join(missing)} URL (blue/green default to the slots' Services)")
        if unknown := sorted(set(urls) - {"router", "public", "blue", "green"}):
            raise ValueError(f"unknown endpoints {unknown}; known: router, public, blue, green")
        return urls

    @field_validator("job_images")
    @classmethod
    def _job_images_by_digest(cls, images: dict[str, str]) -> dict[str, str]:
        for name, reference in images.items():
            if "@" not in reference:
                raise ValueError(f"{name}: {reference!r} is not <repository>@sha256:<64 hex>")
            try:
                check_image_reference(reference)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return images

    def upstream_name(self, slot: str) -> str:
        """ingress-nginx's name for a slot's Service as an upstream (``$proxy_upstream_name``)."""
        return f"{self.namespace}-{self.deployment_name(slot)}-{self.port}"

    def slot_url(self, slot: str) -> str:
        """The URL of a slot: ``urls[slot]`` where given, else its Service inside the cluster."""
        return self.urls.get(slot) or f"http://{self.deployment_name(slot)}.{self.namespace}.svc:{self.port}"

    @property
    def deployable(self) -> dict[str, str]:
        """Release version -> the image it runs as, by digest."""
        return {version: self.image_for(version) for version in self.versions}

    def image_for(self, version: str) -> str:
        """The image ``version`` runs as, by digest; KeyError for a version with none."""
        reference = self.versions[version]
        return reference if "@" in reference else f"{self.image}@{reference}"

    def deployment_name(self, slot: str) -> str:
        return f"{self.app}-{slot}"


def parse_kubernetes_settings(data: object, source: str = "<settings>") -> KubernetesSettings:
    try:
        return KubernetesSettings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in error['loc']) or '<root>'}: {error['msg']}"
                             for error in exc.errors())
        raise KubernetesSettingsError(f"invalid Kubernetes settings {source}: {problems}") from None


def load_kubernetes_settings(path: str | Path) -> KubernetesSettings:
    """Settings from a YAML file; a relative ``deployment_template`` is taken from the file's folder."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise KubernetesSettingsError(f"cannot read Kubernetes settings {path}: {exc}") from None
    if isinstance(data, dict) and "deployment_template" in data:
        data = {**data, "deployment_template": path.resolve().parent / str(data["deployment_template"])}
    return parse_kubernetes_settings(data, source=str(path))
