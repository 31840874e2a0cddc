"""The cost model of the checklist's Appendix C: unit prices (the spec's ``costs:``) times the usage Prometheus
recorded over a period (documents processed, replica-hours of the service's pods, web-search calls) give USD by
component and USD per document. No Airflow imports: the audits and the release gate share it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sap_llm_release.evidence import Number
from sap_llm_release.templates import render, require_known_variables

HOURS_PER_MONTH = 730  # 8760 / 12: the month cloud providers bill a monthly price over
USAGE_VARIABLES = {"selector", "period", "resolution", "resolution_s"}
Price = Annotated[Number, Field(ge=0)]


class MonthlyPrices(BaseModel):
    """USD per month of the services billed by the month, prorated over a period by its hours."""

    model_config = ConfigDict(extra="forbid")

    cosmos_db: Price
    redis: Price
    mongodb: Price
    monitoring: Price
    storage: Price


class UsageQueries(BaseModel):
    """PromQL of the usage over a period, evaluated at its end: ``$selector`` (the label matchers of the series
    counted), ``$period`` (e.g. ``86400s``), ``$resolution`` / ``$resolution_s`` (a subquery's step, e.g. ``60s`` /
    ``60``). Each gives one value; the web-search calls of a service without that counter count as 0 (said)."""

    model_config = ConfigDict(extra="forbid")

    documents: str = Field(min_length=1)
    replica_hours: str = Field(min_length=1)
    web_search_calls: str = Field(min_length=1)

    @field_validator("documents", "replica_hours", "web_search_calls")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, USAGE_VARIABLES)


@dataclass(frozen=True)
class Usage:
    """What the service used over ``hours``; ``web_search_calls`` is None when no web-search series exists."""

    documents: float
    replica_hours: float
    web_search_calls: float | None
    hours: float

    def describe(self) -> str:
        searches = "no web-search series (counted as 0 calls)" if self.web_search_calls is None else \
            f"{self.web_search_calls:,.0f} web-search calls"
        return (f"{self.documents:,.0f} documents, {self.replica_hours:,.2f} replica-hours, {searches} "
                f"over {self.hours:,.2f} h")


@dataclass(frozen=True)
class CostBreakdown:
    """USD by component over a usage's period and the documents it served."""

    usd: dict[str, float]
    documents: float

    @property
    def total(self) -> float:
        return sum(self.usd.values())

    @property
    def usd_per_document(self) -> float | None:
        """None without documents: a cost per document of nothing is no data, never a pass."""
        return self.total / self.documents if self.documents > 0 else None

    def per_document(self) -> dict[str, float]:
        """USD per document by component (empty without documents)."""
        if self.documents <= 0:
            return {}
        return {component: usd / self.documents for component, usd in self.usd.items()}


class CostModel(BaseModel):
    """Unit prices in USD (Appendix C) and the queries that read the usage they are multiplied by."""

    model_config = ConfigDict(extra="forbid")

    gpu_node_hour: Price = Field(description="USD per replica-hour of the service (one GPU node per replica)")
    web_search_query: Price = Field(description="USD per web-search call")
    monthly: MonthlyPrices
    usage: UsageQueries

    def breakdown(self, usage: Usage) -> CostBreakdown:
        """USD per component over the usage's period: GPU nodes by replica-hour, monthly services prorated by
        hours, web search by call."""
        share_of_month = usage.hours / HOURS_PER_MONTH
        usd = {"gpu_nodes": usage.replica_hours * self.gpu_node_hour,
               **{name: price * share_of_month for name, price in self.monthly.model_dump().items()},
               "web_search": (usage.web_search_calls or 0) * self.web_search_query}
        return CostBreakdown(usd, usage.documents)


def read_usage(metrics: Any, queries: UsageQueries, selector: str, start: datetime, end: datetime) -> Usage | None:
    """The usage of the series ``selector`` matches over [start, end), instant queries at ``end``; None when no
    document or pod series was recorded. ``metrics``: a PrometheusProvider (MetricsUnavailable when unreachable)."""
    variables = _variables(selector, end - start)
    values = {name: _one_value(metrics.query_vector(render(query, **variables), end), query)
              for name, query in queries.model_dump().items()}
    if values["documents"] is None or values["replica_hours"] is None:
        return None
    return Usage(values["documents"], values["replica_hours"], values["web_search_calls"],
                 (end - start).total_seconds() / 3600)


def read_usage_steps(metrics: Any, queries: UsageQueries, selector: str, start: datetime, end: datetime,
                     step: timedelta) -> dict[float, Usage]:
    """The usage in each ``step`` of [start, end), by the epoch second the step ends at; steps without a document
    or pod value are left out."""
    variables = _variables(selector, step)
    found = {}
    for name, query in queries.model_dump().items():
        series = metrics.query_range(render(query, **variables), start + step, end, step)
        if len(series) > 1:
            raise ValueError(f"usage query {query!r} gives {len(series)} series; aggregate it to one")
        found[name] = dict(series[0][1]) if series else {}
    hours = step.total_seconds() / 3600
    return {at: Usage(documents, found["replica_hours"][at], found["web_search_calls"].get(at), hours)
            for at, documents in sorted(found["documents"].items()) if at in found["replica_hours"]}


def _variables(selector: str, period: timedelta) -> dict[str, str]:
    """The usage queries' variables over ``period``; the subquery resolution is a minute for periods of whole
    minutes, a second otherwise (a rehearsal's 10 s window)."""
    seconds = int(period.total_seconds())
    resolution = 60 if seconds % 60 == 0 else 1
    return {"selector": selector, "period": f"{seconds}s", "resolution": f"{resolution}s",
            "resolution_s": str(resolution)}


def _one_value(found: list[tuple[dict[str, str], float]], query: str) -> float | None:
    if len(found) > 1:
        raise ValueError(f"usage query {query!r} gives {len(found)} series; aggregate it to one")
    return found[0][1] if found else None
