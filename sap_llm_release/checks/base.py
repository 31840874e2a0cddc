"""What every check kind shares: its parameters model, whether it takes a threshold, and the context it reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from sap_llm_release.analysis.provider import MetricsProvider
from sap_llm_release.evidence import Evidence, Threshold


class Endpoints(Protocol):
    def url(self, endpoint: str) -> str:
        """Base URL of ``blue``, ``green`` or ``router``."""


@dataclass
class CheckContext:
    """What a check may look at; built by the Airflow layer from the run's target and parameters."""

    service: str
    gate_name: str = ""
    endpoints: Endpoints | None = None
    metrics: MetricsProvider | None = None
    router: Any = None
    deployer: Any = None
    kubernetes: Any = None  # KubernetesAccess (checks/kubernetes.py): the cluster's API client and namespace
    reports_dir: Path | None = None
    ca_file: str | None = None
    services: Mapping[str, str] = field(default_factory=dict)
    # what a few checks read, asked for when a check first needs it (a connection lookup each, most checks need none):
    # every Prometheus of the HA set, and the service's API key and JWT signing key
    prometheus_replica_urls: Callable[[], list[str]] = list
    credentials: Callable[[], tuple[str | None, str | None]] = lambda: (None, None)
    job_results: Callable[[str], dict | None] | None = None
    ledger: Any = None  # the release ledger (sap_llm_release.ledger.Ledger): drills and rollbacks recorded
    attestations: dict[str, dict[str, str]] = field(default_factory=dict)  # gate -> {by, link}: conf or UI
    attestations_not_confirmed: dict[str, str] = field(default_factory=dict)  # gate -> why the UI confirmed none
    fix_forward: dict[str, dict[str, str]] = field(default_factory=dict)  # gate -> {by, link} (request.py)
    requester: str = ""  # who triggered the release: never the approver of its fix-forward
    rate_window: str = "5m"
    slots: dict[str, str] = field(default_factory=lambda: {"blue": "blue", "green": "green"})
    unavailable_reason: str = ""

    @cached_property
    def prometheus_replicas(self) -> list[str]:
        return self.prometheus_replica_urls()

    @cached_property
    def _api_credentials(self) -> tuple[str | None, str | None]:
        return self.credentials()

    @property
    def api_key(self) -> str | None:
        return self._api_credentials[0]

    @property
    def jwt_key(self) -> str | None:
        return self._api_credentials[1]

    def require(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise CheckUnavailable(self.unavailable_reason or f"this target provides no {name}")
        return value


class CheckUnavailable(RuntimeError):
    """The system a check must ask is not configured for this target."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Check:
    """One check kind. Subclasses set ``Params`` and ``needs_threshold`` and implement ``run``."""

    Params: ClassVar[type[BaseModel]] = Params
    needs_threshold: ClassVar[bool] = True

    def run(self, params: Any, threshold: Threshold | None, context: CheckContext) -> Evidence:
        raise NotImplementedError
