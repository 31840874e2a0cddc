"""The audit check kinds: what each measures over the audit's period and how it becomes a finding.

``slo_series`` judges a PromQL series point by point (its worst point, and the day it fell on); ``alerts_fired``
lists every alert that fired in the period with how long; ``release_check`` runs one of the release's check kinds
(TLS, RBAC, secrets, vulnerability reports, Alertmanager receivers, Prometheus targets) as an audit finding;
``alert_delivery`` sends a synthetic alert through the running Alertmanager and confirms each receiver got it
(audits/alert_delivery.py); ``error_log_volume`` counts the service's error log lines (audits/error_logs.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from sap_llm_release.audits.alert_delivery import AlertDelivery
from sap_llm_release.audits.base import AuditContext, AuditKind
from sap_llm_release.audits.error_logs import ErrorLogVolume
from sap_llm_release.audits.model import Finding, Series, Severity, worst
from sap_llm_release.checks.base import Params
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.templates import render, require_known_variables

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

SERIES_VARIABLES = {"service", "step"}


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
        selector = f'(ALERTS{{alertstate="firing",severity="{params.severity}"}} == 1)'
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
    needs_target = True

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


AUDIT_KINDS: dict[str, type[AuditKind]] = {
    "alert_delivery": AlertDelivery,
    "alerts_fired": AlertsFired,
    "error_log_volume": ErrorLogVolume,
    "release_check": ReleaseCheck,
    "slo_series": SloSeries,
}
