"""A release target: the router, the deployer and the endpoints of one place a release runs.

``local``: blue and green as local processes behind nginx, described by the stack directory the local stack
wrote (``SAP_LLM_STACK_DIR``). ``kubernetes``: blue and green as Deployments on a cluster, traffic split by an
HTTPRoute, an ingress-nginx canary or the cutover Service, described by a settings file
(``SAP_LLM_KUBERNETES_SETTINGS``, see ``deploy/kubernetes/settings.example.yaml``) and reached through the API client
the caller gives (the Airflow layer takes it from its Kubernetes connection).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sap_llm_release.deployers.base import Deployer
from sap_llm_release.deployers.local_process import LocalProcessDeployer
from sap_llm_release.jobs.base import JobRunner
from sap_llm_release.jobs.local_process import LocalProcessJobRunner
from sap_llm_release.routers.access_logs import IngressNginxLogs, NginxAccessLog
from sap_llm_release.routers.base import Router
from sap_llm_release.routers.nginx import NginxRouter
from sap_llm_release.service_logs.local_files import LocalProcessLogs

STACK_DIR_ENV = "SAP_LLM_STACK_DIR"
KUBERNETES_SETTINGS_ENV = "SAP_LLM_KUBERNETES_SETTINGS"
ROUTER_STATE_PATH = "/_router/state"  # where the local stack's nginx answers the split it routes (nginx.conf.tmpl)


class TargetError(RuntimeError):
    """The target cannot be built from its configuration."""


COLOURS = ("blue", "green")


def slots_for(blue_slot: str) -> dict[str, str]:
    """Role -> slot. The checklist's roles are fixed (blue: current production, green: the new version); the
    slots alternate: after a promotion the slot called green serves production and the next release goes to the
    other one."""
    if blue_slot not in COLOURS:
        raise TargetError(f"blue_slot: must be one of {COLOURS}, got {blue_slot!r}")
    return {"blue": blue_slot, "green": COLOURS[1 - COLOURS.index(blue_slot)]}


def live_blue_slot(router: Router) -> str:
    """The slot serving all traffic now, read from the live router with slots named as themselves."""
    weights = router.get_weights()
    if weights.blue == 100 or weights.green == 100:
        return "blue" if weights.blue == 100 else "green"
    raise TargetError(
        f"{router.describe()} splits {weights}; a release starts from one slot serving 100 %: "
        "finish or roll back the release in progress first"
    )


@dataclass(frozen=True)
class Target:
    name: str
    router: Router
    deployer: Deployer
    urls: dict[str, str]
    reports_dir: Path
    slots: dict[str, str]
    job_runner: JobRunner | None = None
    ca_file: str | None = None  # the CA that signed the public endpoint's certificate, when not a public CA
    services: dict[str, str] = field(default_factory=dict)  # backing services by name (redis, ...) -> URL
    prometheus_replicas: list[str] = field(default_factory=list)  # every Prometheus of an HA pair/trio, by URL
    api_key: str | None = None  # a key the service accepts, for checks that post documents
    jwt_secret_file: str | None = None  # the key that signs the JWTs the service accepts, where the target holds it
    kubernetes: Any = None  # KubernetesAccess for the infrastructure checks, on a cluster
    pods: Any = None  # KubernetesSettings for inference jobs run as pods, on a cluster (job_runner is None then)
    logs: Any = None  # LogSource (service_logs/): the service's own logs, for the error-log audit
    access_log: Any = None  # AccessLog (routers/access_logs.py): what the router answered, for a rollback's losses
    deployable: dict[str, str] | None = None  # version -> the image it deploys, by digest; None: any version

    def refuse_undeployable(self, version: str) -> None:
        """Raise :class:`TargetError` when the target's settings pin no image for ``version``."""
        if self.deployable is not None and version not in self.deployable:
            raise TargetError(f"version: {version!r} is not deployable on the {self.name} target: its settings pin "
                              f"no image digest for it (deployable: {', '.join(self.deployable) or 'none'})")

    def url(self, endpoint: str) -> str:
        return self.urls[endpoint]


def local_target(stack_dir: Path, blue_slot: str = "blue") -> Target:
    """The local stack with the checklist's roles mapped onto its two slots (by default, each onto itself)."""
    try:
        stack = json.loads((stack_dir / "stack.json").read_text())
    except (OSError, ValueError) as exc:
        raise TargetError(
            f"local target: cannot read {stack_dir / 'stack.json'} (is the local stack up?): {exc}"
        ) from None
    ports = stack["ports"]
    slots = slots_for(blue_slot)
    addresses = {role: f"127.0.0.1:{ports[slot]}" for role, slot in slots.items()}
    return Target(
        name="local",
        router=NginxRouter(
            nginx_conf=stack_dir / "nginx.conf", upstream_file=stack_dir / "upstream.conf", addresses=addresses,
            state_url=f"http://127.0.0.1:{ports['router']}{ROUTER_STATE_PATH}",
        ),
        deployer=LocalProcessDeployer(
            state_dir=stack_dir,
            ports={role: ports[slot] for role, slot in slots.items()},
            slots=slots,
            server_command=stack["server_command"],
        ),
        urls={"router": f"http://127.0.0.1:{ports['router']}", **{r: f"http://{a}" for r, a in addresses.items()},
              **({"public": stack["public_url"]} if "public_url" in stack else {})},
        ca_file=stack.get("ca_file"),
        services=stack.get("services", {}),
        prometheus_replicas=stack.get("prometheus_replicas", []),
        api_key=stack.get("api_key"),
        jwt_secret_file=stack.get("jwt_secret_file"),
        reports_dir=stack_dir / "reports",
        slots=slots,
        logs=LocalProcessLogs(stack_dir, processes=COLOURS),
        access_log=NginxAccessLog(stack_dir / "access.log"),
        job_runner=LocalProcessJobRunner(
            commands=stack.get("job_commands", {}), work_dir=stack_dir / "jobs",
            cwd=Path(stack.get("project_dir", ".")), env=stack.get("job_env", {}),
        ),
    )


def kubernetes_target(settings: Any, api_client: Any, blue_slot: str = "blue") -> Target:
    """The cluster ``settings`` (a KubernetesSettings) describe, through ``api_client`` (a kubernetes ApiClient),
    with the checklist's roles mapped onto its two slots."""
    from sap_llm_release.checks.kubernetes import KubernetesAccess
    from sap_llm_release.deployers.kubernetes import KubernetesDeployer
    from sap_llm_release.service_logs.kubernetes_pods import KubernetesPodLogs

    slots = slots_for(blue_slot)
    return Target(
        name="kubernetes",
        router=kubernetes_router(settings, api_client, slots),
        deployer=KubernetesDeployer(settings, api_client, slots=slots),
        urls={**{role: settings.slot_url(slot) for role, slot in slots.items()},
              "router": settings.urls["router"], "public": settings.urls["public"]},
        reports_dir=Path(settings.reports_dir),
        slots=slots,
        services=dict(settings.services),
        prometheus_replicas=list(settings.prometheus_replicas),
        kubernetes=KubernetesAccess(api_client, settings.namespace),
        pods=settings,
        deployable=settings.deployable,
        logs=KubernetesPodLogs(api_client, settings.namespace, selector=f"app={settings.app}"),
        access_log=_router_access_log(settings, api_client, slots),
    )


def _router_access_log(settings: Any, api_client: Any, slots: dict[str, str]) -> Any:
    """ingress-nginx's controller logs for the two slots' upstreams, where the settings name the controller."""
    if settings.router_logs is None:
        return None
    from sap_llm_release.service_logs.kubernetes_pods import KubernetesPodLogs

    controller = settings.router_logs
    pods = KubernetesPodLogs(api_client, controller.namespace, selector=controller.selector,
                             container=controller.container)
    return IngressNginxLogs(pods, tuple(settings.upstream_name(slot) for slot in slots.values()))


def kubernetes_router(settings: Any, api_client: Any, slots: dict[str, str]) -> Router:
    """The router the settings name, over the roles' slots."""
    if settings.router == "gateway_api":
        from sap_llm_release.routers.gateway_api import HTTPRouteRouter

        return HTTPRouteRouter(api_client, namespace=settings.namespace, route=settings.route,
                               blue_service=settings.deployment_name(slots["blue"]),
                               green_service=settings.deployment_name(slots["green"]))
    if settings.router == "ingress_nginx":
        if slots["green"] != "green":
            raise TargetError("kubernetes target: the ingress-nginx canary sends its share to the green slot's "
                              "Service only; after a promotion to that slot, use gateway_api or service_selector")
        from sap_llm_release.routers.ingress_nginx import IngressCanaryRouter

        return IngressCanaryRouter(api_client, namespace=settings.namespace, canary_ingress=settings.route)
    from sap_llm_release.routers.service_selector import ServiceSelectorRouter

    return ServiceSelectorRouter(api_client, namespace=settings.namespace, service=settings.route, slots=slots)


def deployable_on_cluster() -> dict[str, str] | None:
    """Version -> image by digest that the cluster's settings (``$SAP_LLM_KUBERNETES_SETTINGS``) deploy, for the
    trigger form; None where no settings are configured. Unreadable settings raise :class:`TargetError`."""
    from sap_llm_release.kubernetes_settings import KubernetesSettingsError, load_kubernetes_settings

    path = os.environ.get(KUBERNETES_SETTINGS_ENV)
    if not path:
        return None
    try:
        return load_kubernetes_settings(path).deployable
    except KubernetesSettingsError as exc:
        raise TargetError(f"kubernetes target: {exc}") from None


def build_target(kind: str, blue_slot: str = "blue", kubernetes_api: Any = None) -> Target:
    """The one place that chooses a target backend by name. ``kubernetes_api`` makes the cluster's API client
    (called only for the kubernetes target)."""
    if kind == "local":
        stack_dir = os.environ.get(STACK_DIR_ENV)
        if not stack_dir:
            raise TargetError(f"local target: set {STACK_DIR_ENV} to the directory of the running local stack")
        return local_target(Path(stack_dir), blue_slot)
    if kind == "kubernetes":
        from sap_llm_release.kubernetes_settings import KubernetesSettingsError, load_kubernetes_settings

        path = os.environ.get(KUBERNETES_SETTINGS_ENV)
        if not path:
            raise TargetError(f"kubernetes target: set {KUBERNETES_SETTINGS_ENV} to the cluster's settings file "
                              "(see deploy/kubernetes/settings.example.yaml)")
        try:
            settings = load_kubernetes_settings(path)
        except KubernetesSettingsError as exc:
            raise TargetError(f"kubernetes target: {exc}") from None
        if kubernetes_api is None:
            raise TargetError("kubernetes target: no Kubernetes API client was given")
        return kubernetes_target(settings, kubernetes_api(), blue_slot)
    raise TargetError(f"unknown target {kind!r}; known: local, kubernetes")
