"""The spec's ``service_levels:`` section: the service's SLOs over a period (30 days), each an objective on a ratio
of bad events, as Sloth models them. An SLI is either ``errors`` and ``total`` (PromQL rates over ``$window``) or one
``error_ratio`` query over ``$window`` (for an objective on time, such as minutes under a throughput floor)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.functional_validators import BeforeValidator

from sap_llm_release.durations import parse_duration
from sap_llm_release.templates import require_known_variables

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
SLI_VARIABLES = {"service", "window"}


class ServiceLevelObjective(BaseModel):
    """One SLO: ``objective`` is the share of good events (0.99: 1 % of the period's error budget may be spent)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,40}$")
    description: str = Field(min_length=1)
    objective: float = Field(gt=0, lt=1, description="the share of good events, e.g. 0.99")
    errors: str | None = Field(default=None, description="PromQL: bad events per second over $window")
    total: str | None = Field(default=None, description="PromQL: all events per second over $window")
    error_ratio: str | None = Field(default=None, description="PromQL: the bad share now (0..1), over $window if "
                                   "it names one; longer windows average its shortest window's record")
    runbook: str = Field(pattern=r"^[a-z0-9-]+\.md$", description="its runbook in docs/runbooks/")

    @field_validator("errors", "total", "error_ratio")
    @classmethod
    def _known_variables(cls, query: str | None) -> str | None:
        return None if query is None else require_known_variables(query, SLI_VARIABLES)

    @model_validator(mode="after")
    def _one_sli(self) -> ServiceLevelObjective:
        ratio = self.errors is not None and self.total is not None
        if ratio == (self.error_ratio is not None) or (self.errors is None) != (self.total is None):
            raise ValueError("give either errors and total, or error_ratio")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)


class BurnRateAlert(BaseModel):
    """A multi-window burn-rate condition: the error ratio above ``factor`` times the budget over both windows."""

    model_config = ConfigDict(extra="forbid")

    factor: float = Field(gt=0)
    long: Duration
    short: Duration


class ServiceLevels(BaseModel):
    """The SLOs, their period, and the burn rates that page (critical) and open a ticket (warning). The defaults are
    the Google SRE workbook's: page at 14.4x over 1 h and 5 m or 6x over 6 h and 30 m (2 % and 5 % of a 30-day budget
    spent); ticket at 3x over 1 d and 2 h or 1x over 3 d and 6 h (10 % each)."""

    model_config = ConfigDict(extra="forbid")

    period: Duration = timedelta(days=30)
    evaluation_interval: Duration = Field(default=timedelta(seconds=10), description="how often the SLO rule groups "
                                          "are evaluated: their shortest window is 5 minutes")
    runbooks_url: str = Field(default="docs/runbooks/", description="prefix of the alerts' runbook_url: where "
                              "docs/runbooks/ of this repository can be read (the repository path by default)")
    slos: list[ServiceLevelObjective] = Field(min_length=1)
    page: list[BurnRateAlert] = Field(default_factory=lambda: [
        BurnRateAlert(factor=14.4, long="1h", short="5m"), BurnRateAlert(factor=6, long="6h", short="30m")])
    ticket: list[BurnRateAlert] = Field(default_factory=lambda: [
        BurnRateAlert(factor=3, long="1d", short="2h"), BurnRateAlert(factor=1, long="3d", short="6h")])

    @field_validator("slos")
    @classmethod
    def _unique(cls, slos: list[ServiceLevelObjective]) -> list[ServiceLevelObjective]:
        names = [slo.name for slo in slos]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate SLO names {sorted({n for n in names if names.count(n) > 1})}")
        return slos

    def windows(self) -> list[timedelta]:
        """Every window an SLI is recorded at: the alerts' windows and the period, shortest first."""
        alerts = [*self.page, *self.ticket]
        return sorted({*(a.long for a in alerts), *(a.short for a in alerts), self.period})
