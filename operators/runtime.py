"""What every release task needs at run time: the spec, the validated request, the ledger and the target."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sap_llm_release.analysis.readiness import readiness_url
from sap_llm_release.analysis.window import SLOQuery
from sap_llm_release.checks.base import CheckContext
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.request import ReleaseRequest, validate_request
from sap_llm_release.spec import Profile, ReleaseSpec, load_spec
from sap_llm_release.targets import Target, TargetError, build_target, slots_for
from sap_llm_release.templates import render

if TYPE_CHECKING:
    from sap_llm_release.analysis.prometheus import PrometheusAccess
    from sap_llm_release.rollout import Rollout

DEFAULT_SPEC = Path(__file__).resolve().parent.parent / "specs" / "sap_llm.yaml"
SPEC_ENV = "SAP_LLM_RELEASE_SPEC"


def release_spec_path() -> str:
    """The spec the DAGs and plugins read: ``$SAP_LLM_RELEASE_SPEC``, else the project's."""
    return os.environ.get(SPEC_ENV, str(DEFAULT_SPEC))


LEDGER_CONN_ID = "sap_llm_ledger"
PROMETHEUS_CONN_ID = "sap_llm_prometheus"


@lru_cache(maxsize=8)
def _spec_at(path: str, mtime: float) -> ReleaseSpec:
    return load_spec(path)


def spec_at(path: str) -> ReleaseSpec:
    """The spec at ``path``, re-read only when the file changed."""
    return _spec_at(path, os.path.getmtime(path))


def connection_url(conn_id: str) -> str:
    """A connection as a URL: ``extra.url`` when set, else built from its fields."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    if url := conn.extra_dejson.get("url"):
        return url
    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn.conn_type == "redis":
        auth = f":{quote(conn.password, safe='')}@" if conn.password else ""
        return f"redis://{auth}{conn.host}:{conn.port or 6379}/{conn.extra_dejson.get('db', 0)}"
    if conn.conn_type in ("postgres", "postgresql"):
        auth = _userinfo(conn.login, conn.password)
        return f"postgresql+psycopg://{auth}{conn.host}:{conn.port or 5432}/{conn.schema}"
    if conn.conn_type == "mongo":  # as the MongoDB provider: extra.srv for mongodb+srv://, which takes no port
        srv = conn.extra_dejson.get("srv")
        scheme, address = ("mongodb+srv", conn.host) if srv else ("mongodb", f"{conn.host}:{conn.port or 27017}")
        return f"{scheme}://{_userinfo(conn.login, conn.password)}{address}/{conn.schema or ''}"
    if conn.conn_type == "gremlin":  # as the TinkerPop provider: Cosmos DB's database as login, its graph as schema
        user = f"/dbs/{conn.login}/colls/{conn.schema}" if conn.login and conn.schema else conn.login
        return f"wss://{_userinfo(user, conn.password)}{conn.host}:{conn.port or 443}/"
    scheme = conn.schema if conn.schema in ("http", "https") else "http"
    return f"{scheme}://{conn.host}:{conn.port}" if conn.port else f"{scheme}://{conn.host}"


def _userinfo(login: str | None, password: str | None) -> str:
    """``login:password@`` percent-encoded (a Cosmos DB username holds slashes, a key ``+/=``), or nothing."""
    if not login:
        return ""
    return quote(login, safe="") + (f":{quote(password, safe='')}" if password else "") + "@"


def prometheus_access(conn_id: str = "sap_llm_prometheus") -> PrometheusAccess:
    """Prometheus from its connection: the URL (``extra.url``, else host, port and ``schema`` http/https), the CA
    bundle to verify it with (``extra.ca_file``; default the system's), and its credentials: login and password as
    HTTP basic auth, or a password without a login as a bearer token."""
    from airflow.sdk import BaseHook

    from sap_llm_release.analysis.prometheus import PrometheusAccess

    conn = BaseHook.get_connection(conn_id)
    token = conn.password if conn.password and not conn.login else None
    return PrometheusAccess(connection_url(conn_id), ca_file=conn.extra_dejson.get("ca_file"),
                            username=conn.login or None, password=conn.password if conn.login else None,
                            bearer_token=token)


SERVICE_CONN_IDS = {
    "redis": "sap_llm_redis",
    "mongodb": "sap_llm_mongodb",
    "cosmos_gremlin": "sap_llm_cosmos_gremlin",
    "otel_collector": "sap_llm_otel_collector",
    "jaeger": "sap_llm_jaeger",
    "loki": "sap_llm_loki",
    # the data stores the knowledge-base and process-memory-graph gates query (SQLAlchemy URLs)
    "knowledge_base": "sap_llm_knowledge_base",
    "process_memory_graph": "sap_llm_process_memory_graph",
}


class ConfiguredServices(Mapping[str, str]):
    """The backing services' URLs: a service's Airflow connection where one is configured (it replaces what the
    target says), else the target's. A connection is looked up when a check first asks for its service, so a gate
    that pings Redis costs one connection lookup (an Execution API call), not one per backing service."""

    def __init__(self, target_services: Mapping[str, str] | None = None) -> None:
        self._target = dict(target_services or {})
        self._connections: dict[str, str | None] = {}

    def __getitem__(self, service: str) -> str:
        url = self._connection(service) or self._target.get(service)
        if url is None:
            raise KeyError(service)
        return url

    def __iter__(self) -> Iterator[str]:
        return iter([service for service in {**self._target, **SERVICE_CONN_IDS} if service in self])

    def __len__(self) -> int:
        return len(list(iter(self)))

    def _connection(self, service: str) -> str | None:
        from airflow.sdk.exceptions import AirflowNotFoundException

        if service not in SERVICE_CONN_IDS:
            return None
        if service not in self._connections:
            try:
                self._connections[service] = connection_url(SERVICE_CONN_IDS[service])
            except AirflowNotFoundException:
                self._connections[service] = None
        return self._connections[service]


def prometheus_replicas(target: Target) -> list[str]:
    """Every Prometheus of the HA set: ``extra.replicas`` (URLs) of the ``sap_llm_prometheus`` connection where
    given, else what the target runs."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        replicas = BaseHook.get_connection(PROMETHEUS_CONN_ID).extra_dejson.get("replicas")
    except AirflowNotFoundException:
        replicas = None
    return [str(url) for url in replicas] if isinstance(replicas, list) else list(target.prometheus_replicas)


KUBERNETES_CONN_ID = "sap_llm_kubernetes"


def kubernetes_api_client() -> Any:
    """The cluster's API client from the ``sap_llm_kubernetes`` connection (the cncf-kubernetes provider's
    connection type: in-cluster, a kube_config, or a kube_config_path)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client


def kubernetes_connection_extras() -> dict[str, Any]:
    """The ``sap_llm_kubernetes`` connection's extras, resolved before deferring so that a trigger reaches the
    cluster without a connection lookup in the triggerer (as the KubernetesPodOperator does)."""
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(KUBERNETES_CONN_ID).extra_dejson


API_CONN_ID = "sap_llm_api"


def api_credentials(target: Target) -> tuple[str | None, str | None]:
    """The service's API key and JWT signing key for checks: the ``sap_llm_api`` connection (password: API key,
    ``extra.jwt_signing_key``) where configured, else what the target holds."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = BaseHook.get_connection(API_CONN_ID)
    except AirflowNotFoundException:
        secret = Path(target.jwt_secret_file).read_text().strip() if target.jwt_secret_file else None
        return target.api_key, secret
    return conn.password or None, conn.extra_dejson.get("jwt_signing_key")


def with_target(context: CheckContext, target: Target) -> CheckContext:
    """``context`` given what ``target`` runs, with the backing services and credentials configured in Airflow."""
    context.endpoints, context.router, context.deployer = target, target.router, target.deployer
    context.slots, context.ca_file, context.kubernetes = target.slots, target.ca_file, target.kubernetes
    context.services = ConfiguredServices(target.services)
    context.prometheus_replica_urls = lambda: prometheus_replicas(target)
    context.credentials = lambda: api_credentials(target)
    context.reports_dir = Path(target.reports_dir)
    return context


@lru_cache(maxsize=4)
def ledger_for(url: str) -> Ledger:
    return Ledger(url)


def take_traffic_off_green(access: Mapping[str, Any], cause: str) -> tuple[bool, str]:
    """:meth:`Rollout.take_traffic_off_green` for the release ``access`` names (:meth:`ReleaseRun.emergency_access`:
    plain data a trigger carries), on its target and ledger from their connections; blocking, so a trigger runs
    it in a thread. Never raises: a ledger or target that cannot be reached leaves the write to the rollback task,
    which makes the same one first."""
    from sap_llm_release.rollout import Rollout

    try:
        target = build_target(access["target"], access["blue_slot"], kubernetes_api=kubernetes_api_client)
        rollout = Rollout(access["release_id"], target, ledger_for(connection_url(LEDGER_CONN_ID)),
                          Writer(**access["writer"]))
        return rollout.take_traffic_off_green(cause, access["environment"])
    except Exception as exc:  # noqa: BLE001 - whatever kept the write from happening, the rollback task retries it
        return False, f"not taken, left to the rollback: {type(exc).__name__}: {exc}"


class TaskOfRun:
    """What a task of any of the project's DAGs reads from its context (``self.context``): the run's key in the
    ledger (``<dag id>:<run id>``), the writer its rows carry, the ledger."""

    context: Any

    @property
    def run_key(self) -> str:
        ti = self.context["ti"]
        return f"{ti.dag_id}:{ti.run_id}"

    @property
    def writer(self) -> Writer:
        ti = self.context["ti"]
        return Writer(ti.dag_id, ti.run_id, ti.task_id, ti.try_number)

    @cached_property
    def ledger(self) -> Ledger:
        return ledger_for(connection_url(LEDGER_CONN_ID))


@dataclass
class ReleaseRun(TaskOfRun):
    """One release DAG run seen from inside a task."""

    spec_path: str
    context: Any

    @cached_property
    def spec(self) -> ReleaseSpec:
        return spec_at(self.spec_path)

    @cached_property
    def request(self) -> ReleaseRequest:
        return validate_request(dict(self.context["params"]), self.spec)

    @property
    def profile(self) -> Profile:
        return self.spec.profile(self.request.profile)

    @property
    def release_id(self) -> str:
        return self.run_key

    @property
    def triggered_by(self) -> str:
        return self.context["dag_run"].triggering_user_name or self.request.requested_by

    @cached_property
    def prometheus(self) -> PrometheusAccess:
        return prometheus_access(PROMETHEUS_CONN_ID)

    @cached_property
    def blue_slot(self) -> str:
        return self.ledger.blue_slot(self.release_id)

    @cached_property
    def target(self) -> Target:
        return build_target(self.profile.target, self.blue_slot, kubernetes_api=kubernetes_api_client)

    def check_context(self) -> CheckContext:
        from sap_llm_release.analysis.prometheus import PrometheusProvider

        context = CheckContext(
            service=self.spec.service,
            attestations={gate: a.model_dump() for gate, a in self.request.attestations.items()},
            fix_forward={gate: a.model_dump() for gate, a in self.request.fix_forward.items()},
            requester=self.triggered_by,
            rate_window=self.spec.rate_window(self.request.profile),
            metrics=PrometheusProvider(self.prometheus),
            ledger=self.ledger,
        )
        try:
            with_target(context, self.target)
        except TargetError as exc:
            context.unavailable_reason = str(exc)
            return context
        context.job_results = lambda job: self.ledger.job_result(self.release_id, job)
        return context

    def green_slo_queries(self) -> list[SLOQuery]:
        """The spec's health checks, then its SLOs, as queries on green's current slot."""
        return self._slo_queries("green", [*self.spec.analysis.health, *self.spec.analysis.slos])

    def blue_recovery_queries(self) -> list[SLOQuery]:
        """The SLOs the spec watches after a rollback, as queries on blue's slot."""
        names = self.spec.traffic.recovery.slos
        return self._slo_queries("blue", [slo for slo in self.spec.analysis.slos if slo.name in names])

    def _slo_queries(self, role: str, slos: list) -> list[SLOQuery]:
        profile = self.request.profile
        variables = {"colour": slots_for(self.blue_slot)[role], "rate_window": self.spec.rate_window(profile),
                     "service": self.spec.service}
        severe_window = {**variables, "rate_window": self.spec.severe_rate_window(profile)}

        def severe(slo: Any) -> dict[str, Any]:
            if slo.severe is None:
                return {}
            return {"severe_op": slo.severe.op, "severe_threshold": slo.severe.value,
                    "severe_promql": slo.render(**severe_window), "severe_min_events": slo.severe.min_events,
                    "severe_events_promql": render(slo.severe.events, **severe_window)}

        def counts(slo: Any) -> dict[str, Any]:
            if slo.counts is None:
                return {}
            return {"counts_bad_promql": render(slo.counts.bad, **variables),
                    "counts_events_promql": render(slo.counts.events, **variables),
                    "counts_share": slo.counts.share, "counts_confidence": slo.counts.confidence}

        return [SLOQuery(slo.name, slo.render(**variables), slo.threshold.op, slo.threshold.value, slo.no_data.value,
                         **severe(slo), **counts(slo)) for slo in slos]

    def green_ready_url(self) -> str:
        """Green's readiness endpoint on this target."""
        return readiness_url(self.target.url("green"))

    def blue_ready_url(self) -> str:
        """Blue's readiness endpoint on this target."""
        return readiness_url(self.target.url("blue"))

    def job_variables(self) -> dict[str, str]:
        """Every ``$name`` a job's arguments may use, for this release on this target."""
        builtins = {"version": self.request.version, **{f"{name}_url": url for name, url in self.target.urls.items()}}
        return self.profile.job_variables(builtins)

    def emergency_access(self) -> dict[str, Any]:
        """What a trigger needs to take this release's traffic off green where it decides a breach."""
        return {"release_id": self.release_id, "environment": self.request.environment,
                "target": self.profile.target, "blue_slot": self.blue_slot, "writer": asdict(self.writer)}

    @cached_property
    def rollout(self) -> Rollout:
        """The release procedure on this run's target, recording as this task try."""
        from sap_llm_release.rollout import Rollout

        return Rollout(self.release_id, self.target, self.ledger, self.writer)

    def event(self, name: str, detail: str = "") -> None:
        self.ledger.record_event(self.release_id, name, detail, self.writer)


def off_green_at_resume(run: ReleaseRun, event: dict[str, Any], reason: str) -> str:
    """What the trigger did about green's traffic on the breach it decided; where it moved nothing (a trigger saved
    before it could, or one whose write failed), the resumed task tries the same (idempotent) write at once."""
    done = event.get("traffic_off_green")
    if done and done["moved"]:
        return f"taken by the trigger at {done['done_at']} (decided {done['decided_at']}): {done['seen']}"
    moved, seen = take_traffic_off_green(run.emergency_access(), reason)
    return (f"trigger: {done['seen'] if done else 'did not try'}; "
            f"at resume: {'moved ' if moved else ''}{seen}")
