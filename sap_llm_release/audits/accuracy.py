"""``model_accuracy``: the weekly accuracy review (checklist section 10, "Weekly: model accuracy review"). The
audit's job evaluates the model serving now on a fresh labelled sample through the validator image (the release's
job path: a pod on a cluster, a local process on the local stack); this check holds each metric of its result to the
threshold of the release gate that reads the same metric (section 1's thresholds, one definition). Measured: how
many metrics fall short of their gate's threshold (a metric missing from the result falls short).

``accuracy_trend``: the monthly retraining assessment over the month's reviews (below)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind
from sap_llm_release.audits.model import Finding, Series, Severity
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.checks.reports import lookup_metric

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck


class ModelAccuracyParams(Params):
    job: str = Field(min_length=1, description="the audit's job whose result is judged")
    gates: list[str] = Field(min_length=1, description="job_result gates whose metric and threshold apply")


class ModelAccuracy(AuditKind):
    """Each named gate's metric read from the audit job's result and held to the gate's threshold. A job that left
    no result is no data."""

    Params = ModelAccuracyParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ModelAccuracyParams = check.check_params
        result = context.require_ledger().audit_job_result(context.run_id, params.job)
        if result is None:
            raise CheckUnavailable(f"job {params.job} left no result in this audit run (see its task's log)")
        short, parts = 0, []
        for gate in params.gates:
            metric, threshold = context.job_gates[gate]
            value = lookup_metric(result, metric)
            met = isinstance(value, (int, float)) and not isinstance(value, bool) and threshold.met_by(value)
            short += not met
            parts.append(f"{metric} {value if value is not None else 'missing'} ({threshold}: "
                         f"{'met' if met else 'SHORT'})")
        sample = result.get("documents")
        detail = f"{len(params.gates) - short} of {len(params.gates)} metrics meet their release gate" + \
                 (f" on {sample} documents" if sample else "") + f"; {'; '.join(parts)}"
        return Finding(check=check.name, kind="model_accuracy", severity=check.judge(short), measured=short,
                       threshold=check.bounds(), detail=detail)


class AccuracyTrendParams(Params):
    audit: str = Field(default="weekly", description="the audit whose job reviews accuracy")
    job: str = Field(min_length=1, description="that audit's job")
    gates: list[str] = Field(min_length=1, description="job_result gates whose metric and threshold apply")
    horizon_days: float = Field(default=90, gt=0, le=3650, description="how far ahead a crossing is looked for")


class AccuracyTrend(AuditKind):
    """The monthly retraining assessment: each metric of the period's accuracy reviews (the review job's results in
    the ledger) fitted with a Theil-Sen line and extended to the day it falls short of its release gate. Measured:
    days from the period's end to the first metric's crossing (0 when one is short already); no crossing within the
    horizon is said as such (ok). Fewer than three reviews, or a metric fewer than three reviews report, is no data."""

    Params = AccuracyTrendParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        from sap_llm_release.audits.forecast import MIN_FIT_POINTS, days_until_outside, fit_line

        params: AccuracyTrendParams = check.check_params
        reviews = context.require_ledger().audit_job_results_between(
            params.audit, params.job, context.period_start, context.period_end)
        if len(reviews) < MIN_FIT_POINTS:
            raise CheckUnavailable(f"{len(reviews)} {params.audit} reviews ({params.job}) in the period; a trend "
                                   f"needs {MIN_FIT_POINTS}")
        end_s, parts, crossings, series = context.period_end.timestamp(), [], {}, []
        for gate in params.gates:
            metric, threshold = context.job_gates[gate]
            points = [(datetime.fromisoformat(at).timestamp(), float(value)) for at, result in reviews
                      if isinstance(value := lookup_metric(result, metric), (int, float))]
            fit = fit_line(points, end_s)
            if fit is None:  # a metric the reviews did not report is no data, never a trend that holds
                raise CheckUnavailable(f"{metric}: {len(points)} of {len(reviews)} reviews report it; a trend needs "
                                       f"{MIN_FIT_POINTS}")
            low, high = (threshold.value, None) if threshold.op in (">", ">=") else (None, threshold.value)
            days = days_until_outside(fit, low, high)
            if days is not None and days <= params.horizon_days:
                crossings[metric] = days
            parts.append(f"{metric} {fit.intercept:.4g} now, {fit.slope_per_day * 7:+.4g} a week"
                         + (f", short of {threshold} in {days:.0f} days" if metric in crossings else ""))
            if float(threshold.value) <= 1:  # the shares, on one axis
                series.append(Series(metric, tuple(points), "", {gate: float(threshold.value)}))
        base = {"check": check.name, "kind": "accuracy_trend", "threshold": check.bounds(),
                "detail": f"{len(reviews)} reviews; " + "; ".join(parts), "series": tuple(series)}
        if not crossings:
            return Finding(**base, severity=Severity.OK, measured=None,
                           measured_text=f"no metric reaches its release threshold within {params.horizon_days:g} "
                                         "days")
        first = round(min(crossings.values()), 2)
        return Finding(**base, severity=check.judge(first), measured=first,
                       day=(context.period_end + timedelta(days=first)).date())
