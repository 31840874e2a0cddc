"""``right_sizing``: the monthly optimisation suggestion, computed from what the period measured. The GPU work the
service did is its replicas times their utilisation; sized so that its busy hours (the 95th percentile of the hourly
utilisation) run at the target utilisation, the service needs ``ceil(replicas x p95 / target)`` replicas, never under
the HA floor. Fewer replicas than it ran is a saving, priced by the cost model (GPU node hours); more is a
performance suggestion (busy hours above the target slow documents down), priced the same way. Measured: the USD a
month the suggestion saves (0 when it saves nothing)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from sap_llm_release.audits.base import AuditContext, AuditKind, PromqlTemplate
from sap_llm_release.audits.cost import HOURS_PER_MONTH, CostModel, read_usage
from sap_llm_release.audits.model import Finding, Series
from sap_llm_release.checks.base import Params
from sap_llm_release.templates import render, require_known_variables

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

BUSY_QUANTILE = 0.95


class RightSizingParams(Params):
    costs: CostModel = Field(description="the spec's costs section (``*costs``)")
    selector: str = Field(min_length=1, description="label matchers of the service's series; $service filled in")
    gpu_query: PromqlTemplate = "avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[$step])) / 100"
    target_utilisation: float = Field(default=0.70, gt=0, le=1, description="busy hours' GPU utilisation to size for")
    min_replicas: int = Field(default=2, ge=1, description="the HA floor: never suggest fewer")

    @field_validator("selector")
    @classmethod
    def _template_names_known(cls, selector: str) -> str:
        return require_known_variables(selector, {"service"})


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class RightSizing(AuditKind):
    """Replicas sized to the period's busy-hour GPU utilisation, and what that saves or costs a month. No GPU
    series, or no replica series, is no data."""

    Params = RightSizingParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: RightSizingParams = check.check_params
        base = {"check": check.name, "kind": "right_sizing", "threshold": check.bounds()}
        promql, points = context.one_series(check.name, params.gpu_query)
        usage = read_usage(context.metrics, params.costs.usage, render(params.selector, service=context.service),
                           context.period_start, context.period_end)
        if not points or usage is None or usage.replica_hours <= 0:
            missing = f"PromQL {promql} has no point" if not points else "no replica series of the service"
            return Finding(**base, severity=check.judge(None), measured=None, detail=f"no data: {missing} in the "
                                                                                         "period")
        replicas = usage.replica_hours / usage.hours
        mean = sum(value for _, value in points) / len(points)
        busy = quantile([value for _, value in points], BUSY_QUANTILE)
        needed = max(params.min_replicas, math.ceil(round(replicas * busy / params.target_utilisation, 6)))
        usd_month = (replicas - needed) * HOURS_PER_MONTH * params.costs.gpu_node_hour
        detail = (f"{replicas:.2f} replicas on average, GPU utilisation mean {mean:.0%}, busy hours (p95) "
                  f"{busy:.0%}; {needed} replicas run the busy hours at {replicas * busy / needed:.0%} (target "
                  f"{params.target_utilisation:.0%}, floor {params.min_replicas}): ")
        if usd_month > 0:
            detail += f"scale down to {needed}, saving USD {usd_month:,.0f} a month in GPU node hours"
        elif usd_month < 0:
            detail += f"scale up to {needed} for the busy hours, USD {-usd_month:,.0f} a month more in GPU node hours"
        else:
            detail += "the replicas fit"
        bounds = {"target": params.target_utilisation, "busy hours (p95)": round(busy, 4)}
        return Finding(**base, severity=check.judge(max(0.0, usd_month)), measured=round(max(0.0, usd_month), 2),
                       detail=detail, series=(Series("gpu_utilisation", tuple(points), "", bounds),))
