"""The audit check kinds: what each measures over the audit's period and how it becomes a finding.

``slo_series`` judges a PromQL series point by point (its worst point, and the day it fell on); ``alerts_fired``
lists every alert that fired in the period with how long; ``release_check`` runs one of the release's check kinds
(TLS, RBAC, secrets, vulnerability reports, Alertmanager receivers, Prometheus targets) as an audit finding;
``cost_per_document`` prices the period's usage with the spec's cost model (Appendix C)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from sap_llm_release.audits.cost import CostModel, read_usage, read_usage_steps
from sap_llm_release.audits.model import Finding, Series, Severity, worst
from sap_llm_release.checks.base import CheckContext, Params
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.templates import render, require_known_variables

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

SERIES_VARIABLES = {"service", "step"}
DAY = timedelta(days=1)


@dataclass
class AuditContext:
    """What an audit check may look at: the period it judges and the systems it asks. ``metrics`` answers range
    and instant queries (:class:`~sap_llm_release.analysis.prometheus.PrometheusProvider`); ``checks`` is the
    context the release's check kinds read."""

    service: str
    period_start: datetime
    period_end: datetime
    step: timedelta
    metrics: Any = None
    checks: CheckContext | None = None


class AuditKind:
    """One audit check kind: its ``Params``, whether it takes warning/critical bounds, and ``run``."""

    Params: ClassVar[type[BaseModel]] = Params
    needs_threshold: ClassVar[bool] = True

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        raise NotImplementedError


def _day_of(epoch_s: float, step: timedelta) -> date:
    """The day a point's window (the step before it) mostly lies in."""
    return datetime.fromtimestamp(epoch_s - step.total_seconds() / 2, timezone.utc).date()


def _bounds(check: AuditCheck) -> dict[str, float]:
    return {name: float(bound.value) for name, bound in (("warning", check.warning), ("critical", check.critical))
            if bound is not None}


class SloSeriesParams(Params):
    query: str = Field(min_length=1, description="PromQL giving one series; $service and $step (the audit's step, "
                                                 "e.g. for rate(...[$step])) are filled in")
    unit: str = ""

    @field_validator("query")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, SERIES_VARIABLES)


class SloSeries(AuditKind):
    """The query over the period, one point per step; the finding is its worst point against the bounds (the
    highest for an upper bound, the lowest for a lower one), on the day it fell. Missing steps are named and make
    the finding a warning at least; no point at all is no data."""

    Params = SloSeriesParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: SloSeriesParams = check.check_params
        step = context.step
        promql = render(params.query, service=context.service, step=f"{int(step.total_seconds())}s")
        found = context.metrics.query_range(promql, context.period_start + step, context.period_end, step)
        if len(found) > 1:
            raise ValueError(f"{check.name}: {promql!r} gives {len(found)} series; aggregate it to one")
        points = found[0][1] if found else []
        base = {"check": check.name, "kind": "slo_series", "threshold": check.bounds()}
        if not points:
            return Finding(**base, severity=check.judge(None), measured=None,
                           detail=f"no data: PromQL {promql} has no point in the period")
        upper = check.warning.op in ("<", "<=")
        at, value = (max if upper else min)(points, key=lambda point: point[1])
        severity = check.judge(value)
        expected = round((context.period_end - context.period_start) / step)
        detail = f"worst {'highest' if upper else 'lowest'} point {value:.6g}{_unit(params.unit)} at " \
                 f"{datetime.fromtimestamp(at, timezone.utc):%Y-%m-%d %H:%M} UTC; PromQL {promql}"
        if len(points) < expected:
            detail += f"; no data for {expected - len(points)} of {expected} steps"
            severity = worst([severity, Severity.WARNING])
        series = Series(check.name, tuple(points), params.unit, _bounds(check))
        return Finding(**base, severity=severity, measured=round(value, 6), detail=detail,
                       day=_day_of(at, step), series=(series,))


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


class AlertsFiredParams(Params):
    severity: str = Field(default="critical", pattern=r"^[a-z]+$", description="the alerts' severity label")
    resolution_s: int = Field(default=60, ge=1, le=3600, description="how finely firing time is counted")


class AlertsFired(AuditKind):
    """Every alert of the severity that fired in the period (Prometheus's ALERTS series), each with how long it
    fired and when it started; measured is how many fired."""

    Params = AlertsFiredParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: AlertsFiredParams = check.check_params
        period = f"{int((context.period_end - context.period_start).total_seconds())}s"
        selector = f'ALERTS{{alertstate="firing",severity="{params.severity}"}}'
        window = f"[{period}:{params.resolution_s}s]"
        minutes = context.metrics.query_vector(f"count_over_time({selector}{window})", context.period_end)
        starts = {_alert_key(labels): value for labels, value in
                  context.metrics.query_vector(f"min_over_time(timestamp({selector}){window})", context.period_end)}
        fired = sorted(((starts.get(_alert_key(labels), context.period_end.timestamp()), _alert_key(labels),
                        count * params.resolution_s / 60) for labels, count in minutes), key=lambda row: row[0])
        parts = [f"{key} fired {duration:.0f} min from {datetime.fromtimestamp(start, timezone.utc):%Y-%m-%d %H:%M}"
                 f" UTC" for start, key, duration in fired]
        return Finding(
            check=check.name, kind="alerts_fired", severity=check.judge(len(fired)), measured=len(fired),
            threshold=check.bounds(), day=_day_of(fired[0][0], timedelta()) if fired else None,
            detail="; ".join(parts) or f"no {params.severity} alert fired in the period")


def _alert_key(labels: dict[str, str]) -> str:
    others = ", ".join(f"{name}={value}" for name, value in sorted(labels.items())
                       if name not in ("__name__", "alertname", "alertstate", "severity"))
    return f"{labels.get('alertname', '?')}" + (f" ({others})" if others else "")


class ReleaseCheckParams(Params):
    kind: str = Field(description="a release check kind (the gates' kinds)")
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: Threshold | None = None
    on_failure: Literal["warning", "critical"] = "critical"

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in CHECK_KINDS:
            raise ValueError(f"unknown release check kind {kind!r}; known kinds: {', '.join(sorted(CHECK_KINDS))}")
        return kind


class ReleaseCheck(AuditKind):
    """A release check kind run as it runs for a gate; passed is ok, failed is ``on_failure``."""

    Params = ReleaseCheckParams
    needs_threshold = False

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ReleaseCheckParams = check.check_params
        kind = CHECK_KINDS[params.kind]
        evidence = kind().run(kind.Params.model_validate(params.params), params.threshold, context.checks)
        numeric = isinstance(evidence.measured, (int, float)) and not isinstance(evidence.measured, bool)
        passed = evidence.verdict is Verdict.PASSED
        detail = evidence.detail if numeric or evidence.measured is None else \
            f"measured {evidence.measured}; {evidence.detail}"
        if not numeric and passed:
            raise ValueError(f"{check.name}: release check {params.kind} measured no number ({evidence.measured!r})")
        return Finding(check=check.name, kind="release_check", measured=evidence.measured if numeric else None,
                       severity=Severity.OK if passed else Severity(params.on_failure), threshold=evidence.threshold,
                       detail=detail, evidence_uri=evidence.evidence_uri)


class CostPerDocumentParams(Params):
    costs: CostModel = Field(description="the spec's costs section (``*costs``)")
    selector: str = Field(min_length=1, description="label matchers of the series counted; $service is filled in")

    @field_validator("selector")
    @classmethod
    def _template_names_known(cls, selector: str) -> str:
        return require_known_variables(selector, {"service"})


class CostPerDocument(AuditKind):
    """USD per document over the period from the cost model; its breakdown is USD per document by component, its
    series the cost per document day by day (step by step for a period of a day or less). No documents is no
    data."""

    Params = CostPerDocumentParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: CostPerDocumentParams = check.check_params
        selector = render(params.selector, service=context.service)
        base = {"check": check.name, "kind": "cost_per_document", "threshold": check.bounds()}
        usage = read_usage(context.metrics, params.costs.usage, selector, context.period_start, context.period_end)
        cost = params.costs.breakdown(usage) if usage else None
        if cost is None or cost.usd_per_document is None:
            seen = usage.describe() if usage else f"no document or pod series match {{{selector}}}"
            return Finding(**base, severity=check.judge(None), measured=None, detail=f"no data: {seen}")
        per_document = cost.usd_per_document
        step = DAY if context.period_end - context.period_start > DAY else context.step
        steps = read_usage_steps(context.metrics, params.costs.usage, selector, context.period_start,
                                 context.period_end, step)
        points = tuple((at, per_step) for at, used in steps.items()
                       if (per_step := params.costs.breakdown(used).usd_per_document) is not None)
        detail = f"USD {per_document:.6f} per document, USD {cost.total:,.2f} in all for {usage.describe()}"
        return Finding(**base, severity=check.judge(per_document), measured=round(per_document, 7), detail=detail,
                       breakdown={part: round(usd, 7) for part, usd in cost.per_document().items()},
                       series=(Series(check.name, points, "USD/document", _bounds(check)),))


AUDIT_KINDS: dict[str, type[AuditKind]] = {
    "alerts_fired": AlertsFired,
    "cost_per_document": CostPerDocument,
    "release_check": ReleaseCheck,
    "slo_series": SloSeries,
}
