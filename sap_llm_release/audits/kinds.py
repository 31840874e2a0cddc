"""The audit check kinds: what each measures over the audit's period and how it becomes a finding.

``slo_series`` judges a PromQL series point by point (its worst point, and the day it fell on); ``alerts_fired``
lists every alert that fired in the period with how long; ``release_check`` runs one of the release's check kinds
(TLS, RBAC, secrets, vulnerability reports, Alertmanager receivers, Prometheus targets) as an audit finding;
``alert_delivery`` sends a synthetic alert through the running Alertmanager and confirms each receiver got it
(alert_delivery.py); ``error_log_volume`` counts the service's error log lines (error_logs.py);
``cost_per_document`` prices the period's usage with the spec's cost model (Appendix C, cost.py).

The weekly and monthly reviews' kinds live in their own modules: ``capacity_forecast`` (forecast.py),
``release_compliance`` (compliance.py), ``incident_retrospective`` (incidents.py), ``input_drift`` and
``confidence_drift`` (drift.py), ``feature_usage`` (usage.py), ``right_sizing`` (optimisation.py), ``model_accuracy``
and ``accuracy_trend`` (accuracy.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from sap_llm_release.audits.accuracy import AccuracyTrend, ModelAccuracy
from sap_llm_release.audits.alert_delivery import AlertDelivery
from sap_llm_release.audits.base import AuditContext, AuditKind, check_bounds, day_of, fired_alerts, utc_text
from sap_llm_release.audits.compliance import ReleaseCompliance
from sap_llm_release.audits.cost import CostModel, read_usage, read_usage_steps
from sap_llm_release.audits.drift import ConfidenceDrift, InputDrift
from sap_llm_release.audits.error_logs import ErrorLogVolume
from sap_llm_release.audits.forecast import CapacityForecast
from sap_llm_release.audits.incidents import IncidentRetrospective
from sap_llm_release.audits.model import Finding, Series, Severity, worst
from sap_llm_release.audits.optimisation import RightSizing
from sap_llm_release.audits.usage import FeatureUsage
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.operations.slo_rules import sli_query
from sap_llm_release.templates import render, require_known_variables

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

__all__ = ["AUDIT_KINDS", "AuditContext", "AuditKind"]
SERIES_VARIABLES = {"service", "step"}
DAY = timedelta(days=1)


class SloSeriesParams(Params):
    query: str | None = Field(default=None, min_length=1, description="PromQL giving one series; $service and $step "
                              "(the audit's step, e.g. for rate(...[$step])) are filled in")
    slo: str | None = Field(default=None, description="instead of a query: the error ratio of this SLO of the spec's "
                            "service_levels at the audit's step (its recording rule where one records that window)")
    unit: str = ""

    @field_validator("query")
    @classmethod
    def _template_names_known(cls, query: str | None) -> str | None:
        return None if query is None else require_known_variables(query, SERIES_VARIABLES)

    @model_validator(mode="after")
    def _query_or_slo(self) -> SloSeriesParams:
        if (self.query is None) == (self.slo is None):
            raise ValueError("give either query or slo")
        return self


class SloSeries(AuditKind):
    """The query over the period, one point per step; the finding is its worst point against the bounds (the
    highest for an upper bound, the lowest for a lower one), on the day it fell. Missing steps are named and make
    the finding a warning at least; no point at all is no data."""

    Params = SloSeriesParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: SloSeriesParams = check.check_params
        step = context.step
        promql, points = context.one_series(check.name, params.query or _sli_query(params.slo, context))
        base = {"check": check.name, "kind": "slo_series", "threshold": check.bounds()}
        if not points:
            return Finding(**base, severity=check.judge(None), measured=None,
                           detail=f"no data: PromQL {promql} has no point in the period")
        upper = check.warning.op in ("<", "<=")
        at, value = (max if upper else min)(points, key=lambda point: point[1])
        severity = check.judge(value)
        expected = round((context.period_end - context.period_start) / step)
        detail = f"worst {'highest' if upper else 'lowest'} point {value:.6g}{_unit(params.unit)} at " \
                 f"{utc_text(at)}; PromQL {promql}"
        if len(points) < expected:
            detail += f"; no data for {expected - len(points)} of {expected} steps"
            severity = worst([severity, Severity.WARNING])
        series = Series(check.name, tuple(points), params.unit, check_bounds(check))
        return Finding(**base, severity=severity, measured=round(value, 6), detail=detail,
                       day=day_of(at, step), series=(series,))


def _sli_query(name: str, context: AuditContext) -> str:
    """The named SLO's error ratio at the audit's step, from the spec's ``service_levels`` (one definition)."""
    levels = context.service_levels
    slo = next((slo for slo in levels.slos if slo.name == name), None) if levels else None
    if slo is None:
        raise CheckUnavailable(f"the spec's service_levels define no SLO {name!r}")
    return sli_query(context.service, slo, levels, context.step)


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
        fired = fired_alerts(context, params.severity, params.resolution_s)
        parts = [f"{alert.key} fired {alert.minutes:.0f} min from {utc_text(alert.first_s)}" for alert in fired]
        return Finding(
            check=check.name, kind="alerts_fired", severity=check.judge(len(fired)), measured=len(fired),
            threshold=check.bounds(), day=day_of(fired[0].first_s, timedelta()) if fired else None,
            detail="; ".join(parts) or f"no {params.severity} alert fired in the period")


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
    """A release check kind run as it runs for a gate; passed is ok, failed is ``on_failure``, nothing measured
    (an endpoint, cluster or report that could not be read) is no data at the check's ``no_data`` severity."""

    Params = ReleaseCheckParams
    needs_threshold = False
    needs_target = True

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ReleaseCheckParams = check.check_params
        kind = CHECK_KINDS[params.kind]
        evidence = kind().run(kind.Params.model_validate(params.params), params.threshold, context.checks)
        numeric = isinstance(evidence.measured, (int, float)) and not isinstance(evidence.measured, bool)
        passed = evidence.verdict is Verdict.PASSED
        if evidence.measured is None:  # the check could not measure: no data, at the check's no-data severity
            return Finding(check=check.name, kind="release_check", measured=None, severity=check.judge(None),
                           threshold=evidence.threshold, detail=f"no data: {evidence.detail}",
                           evidence_uri=evidence.evidence_uri)
        detail = evidence.detail if numeric else f"measured {evidence.measured}; {evidence.detail}"
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
                       series=(Series(check.name, points, "USD/document", check_bounds(check)),))


AUDIT_KINDS: dict[str, type[AuditKind]] = {
    "accuracy_trend": AccuracyTrend,
    "alert_delivery": AlertDelivery,
    "alerts_fired": AlertsFired,
    "error_log_volume": ErrorLogVolume,
    "capacity_forecast": CapacityForecast,
    "confidence_drift": ConfidenceDrift,
    "feature_usage": FeatureUsage,
    "incident_retrospective": IncidentRetrospective,
    "input_drift": InputDrift,
    "model_accuracy": ModelAccuracy,
    "cost_per_document": CostPerDocument,
    "release_check": ReleaseCheck,
    "release_compliance": ReleaseCompliance,
    "right_sizing": RightSizing,
    "slo_series": SloSeries,
}
