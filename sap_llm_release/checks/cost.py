"""Cost per document after a deployment: the audits' cost model (the spec's ``costs:``, Appendix C) over the
release's rate window before now, the window every post-deployment gate reads."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field, field_validator

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.audits.cost import CostModel, read_usage
from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.durations import parse_duration
from sap_llm_release.evidence import Evidence, Threshold
from sap_llm_release.templates import render, require_known_variables


class CostPerDocumentParams(Params):
    costs: CostModel = Field(description="the spec's costs section (``*costs``)")
    selector: str = Field(min_length=1, description="label matchers of the series counted; $service and the "
                                                    "slots of $blue and $green are filled in")

    @field_validator("selector")
    @classmethod
    def _template_names_known(cls, selector: str) -> str:
        return require_known_variables(selector, {"service", "blue", "green"})


class CostPerDocument(Check):
    """USD per document of the series ``selector`` matches over the rate window ending now; no documents (or no
    pod series) fails, an unreachable Prometheus fails."""

    Params = CostPerDocumentParams

    def run(self, params: CostPerDocumentParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        metrics = context.require("metrics")
        selector = render(params.selector, service=context.service, **context.slots)
        end = datetime.now(timezone.utc).replace(microsecond=0)
        try:
            usage = read_usage(metrics, params.costs.usage, selector, end - parse_duration(context.rate_window), end)
        except MetricsUnavailable as exc:
            return Evidence.unmeasured(threshold, str(exc))
        if usage is None:
            return Evidence.unmeasured(threshold, f"no document or pod series match {{{selector}}} in the last "
                                                  f"{context.rate_window}")
        cost = params.costs.breakdown(usage)
        if cost.usd_per_document is None:
            return Evidence.unmeasured(threshold, f"no documents to price: {usage.describe()}")
        parts = ", ".join(f"{part} {usd:.7f}" for part, usd in cost.per_document().items())
        detail = f"USD {cost.total:.4f} for {usage.describe()}; USD per document by component: {parts}"
        return Evidence.compare(round(cost.usd_per_document, 7), threshold, detail)
