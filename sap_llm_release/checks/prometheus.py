"""A PromQL query held to a threshold; no data fails."""

from __future__ import annotations

from string import Template

from pydantic import Field

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold, Verdict


class PrometheusQueryParams(Params):
    query: str = Field(min_length=1, description="PromQL; $service and $rate_window are filled in")


class PrometheusQuery(Check):
    Params = PrometheusQueryParams

    def run(self, params: PrometheusQueryParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        promql = Template(params.query).substitute(service=context.service, rate_window=context.rate_window)
        try:
            value = context.require("metrics").query(promql)
        except MetricsUnavailable as exc:
            return Evidence(Verdict.FAILED, None, str(threshold), str(exc))
        return Evidence.compare(value, threshold, f"PromQL {promql}")
