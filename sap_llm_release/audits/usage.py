"""``feature_usage`` (informational): what the service was used for in the period: requests by endpoint (the
measured total and its breakdown), requests per step (the plot) and the documents processed by type. Ok whenever
there is data; no request counter at all is no data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind, PromqlTemplate
from sap_llm_release.audits.drift import LABEL_PATTERN
from sap_llm_release.audits.model import Finding, Series, Severity
from sap_llm_release.checks.base import Params

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck


class FeatureUsageParams(Params):
    requests: PromqlTemplate = Field(default='sap_llm_requests_total{job="$service"}',
                                     description="the request counter's selector")
    endpoint_label: str = Field(default="endpoint", pattern=LABEL_PATTERN)
    documents: PromqlTemplate = Field(default='sap_llm_documents_processed_total{job="$service"}',
                                      description="the processed-documents counter's selector")
    document_label: str = Field(default="document_type", pattern=LABEL_PATTERN)


class FeatureUsage(AuditKind):
    """Measured is the period's requests; the breakdown splits them by endpoint."""

    Params = FeatureUsageParams
    needs_threshold = False

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: FeatureUsageParams = check.check_params
        promql, by_endpoint = context.increase_by_label(params.requests, params.endpoint_label)
        base = {"check": check.name, "kind": "feature_usage", "threshold": ""}
        if not by_endpoint:
            return Finding(**base, severity=check.judge(None), measured=None,
                           detail=f"no data: PromQL {promql} found no request counter in the period")
        total = round(sum(by_endpoint.values()))
        breakdown = {str(endpoint or f"(no {params.endpoint_label})"): round(count)
                     for endpoint, count in sorted(by_endpoint.items(), key=lambda item: -item[1])}
        _, per_step = context.one_series(check.name, f"sum(increase({params.requests}[$step]))")
        detail = (f"{total} requests: " + ", ".join(f"{name} {count}" for name, count in breakdown.items())
                  + f"; PromQL {promql}; " + _document_mix(context, params))
        series = Series(f"requests per {int(context.step.total_seconds())} s", tuple(per_step), "requests")
        return Finding(**base, severity=Severity.OK, measured=total, detail=detail, breakdown=breakdown,
                       series=(series,))


def _document_mix(context: AuditContext, params: FeatureUsageParams) -> str:
    """``documents by document_type: invoice 40.0 %, ...``, or why there is no such mix."""
    promql, by_type = context.increase_by_label(params.documents, params.document_label)
    labelled = {name: count for name, count in by_type.items() if name is not None and count > 0}
    if not labelled:
        why = f"carry no {params.document_label} label" if None in by_type else "counted nothing"
        return f"documents by {params.document_label}: none (the series of {promql} {why})"
    total = sum(labelled.values())
    shares = sorted(labelled.items(), key=lambda item: -item[1])
    return f"documents by {params.document_label}: " + ", ".join(f"{name} {count / total:.1%}"
                                                                for name, count in shares)
