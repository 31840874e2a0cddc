"""``capacity_forecast``: where GPU utilisation and throughput are heading. A Theil-Sen line (the median of the
slopes between every pair of points, the median intercept; a bad day among seven does not tilt it as it tilts a
least-squares fit) through each series of the period, with its residual standard error, is extended until it leaves
its bounds: GPU
utilisation its band (60-80 %), throughput its floor (5K docs/h). Measured is the days from the period's end to the
first crossing; no crossing within the horizon is said as such (ok), and a series with too few points is no data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from sap_llm_release.audits.base import AuditContext, AuditKind, PromqlTemplate
from sap_llm_release.audits.model import Finding, Series, Severity
from sap_llm_release.checks.base import Params

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

DAY_S = 86400.0
MIN_FIT_POINTS = 3  # the residual standard error divides by n - 2


class CapacityForecastParams(Params):
    gpu_query: PromqlTemplate = "avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[$step])) / 100"
    gpu_band: tuple[float, float] = Field(default=(0.60, 0.80), description="the utilisation to stay within")
    throughput_query: PromqlTemplate = 'sum(rate(sap_llm_documents_processed_total{job="$service"}[$step])) * 3600'
    throughput_floor: float = Field(default=5000, gt=0, description="docs/h the service must keep up")
    horizon_days: float = Field(default=90, gt=0, le=3650, description="how far ahead a crossing is looked for")

    @model_validator(mode="after")
    def _band_is_ordered(self) -> CapacityForecastParams:
        if not self.gpu_band[0] < self.gpu_band[1]:
            raise ValueError(f"gpu_band: {self.gpu_band} must be (low, high) with low < high")
        return self


@dataclass(frozen=True)
class LinearFit:
    """A Theil-Sen line over ``points`` points; x is days from the period's end, so ``intercept`` is the fitted
    value at the end."""

    points: int
    slope_per_day: float
    intercept: float
    residual_se: float

    def at(self, days: float) -> float:
        return self.intercept + self.slope_per_day * days


def fit_line(points: list[tuple[float, float]], end_s: float) -> LinearFit | None:
    """The Theil-Sen line through ``points`` (epoch s, value), or None for fewer than three points."""
    if len(points) < MIN_FIT_POINTS:
        return None
    import numpy as np  # imported when fitting: the audit DAGs' file is parsed without it

    days = np.array([(at - end_s) / DAY_S for at, _ in points])
    values = np.array([value for _, value in points])
    first, second = np.triu_indices(len(points), k=1)
    apart = days[second] - days[first]
    slope = float(np.median((values[second] - values[first])[apart != 0] / apart[apart != 0]))
    intercept = float(np.median(values - slope * days))
    residuals = values - (slope * days + intercept)
    residual_se = math.sqrt(float(np.sum(residuals**2)) / (len(points) - 2))
    return LinearFit(len(points), float(slope), float(intercept), residual_se)


def days_until_outside(fit: LinearFit, low: float | None, high: float | None) -> float | None:
    """Days from the period's end until the fitted line leaves [low, high] (None: open on that side); 0 when it
    is outside already; None when it never leaves."""
    now = fit.intercept
    if (low is not None and now < low) or (high is not None and now > high):
        return 0.0
    if fit.slope_per_day > 0 and high is not None:
        return (high - now) / fit.slope_per_day
    if fit.slope_per_day < 0 and low is not None:
        return (low - now) / fit.slope_per_day
    return None


@dataclass(frozen=True)
class _Resource:
    name: str
    query: str
    low: float | None
    high: float | None
    unit: str
    staying: str  # "inside the 0.6-0.8 band"
    crossing: str  # "leaves the 0.6-0.8 band"

    def bounds(self) -> dict[str, float]:
        return {name: value for name, value in (("low", self.low), ("high", self.high)) if value is not None}


@dataclass(frozen=True)
class _Forecast:
    resource: _Resource
    promql: str
    points: list[tuple[float, float]]
    fit: LinearFit | None
    days: float | None  # to the crossing, None when none within the horizon


class CapacityForecast(AuditKind):
    """GPU utilisation and throughput fitted and extended; the finding is the days to the first crossing."""

    Params = CapacityForecastParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: CapacityForecastParams = check.check_params
        low, high = params.gpu_band
        resources = (
            _Resource("gpu_utilisation", params.gpu_query, low, high, "", f"inside the {low:g}-{high:g} band",
                      f"leaves the {low:g}-{high:g} band"),
            _Resource("throughput", params.throughput_query, params.throughput_floor, None, "docs/h",
                      f"above {params.throughput_floor:g} docs/h", f"falls under {params.throughput_floor:g} docs/h"),
        )
        forecasts = [_forecast(resource, check.name, context, params.horizon_days) for resource in resources]
        base = {"check": check.name, "kind": "capacity_forecast", "threshold": check.bounds()}
        unfitted = [forecast for forecast in forecasts if forecast.fit is None]
        if unfitted:
            return Finding(**base, severity=check.judge(None), measured=None, detail="no data: " + "; ".join(
                f"{f.resource.name}: PromQL {f.promql} has {len(f.points)} points in the period, a fit needs "
                f"{MIN_FIT_POINTS}" for f in unfitted))
        step_words = _step_words(context.step)
        detail = "; ".join(_describe(forecast, context, step_words, params.horizon_days) for forecast in forecasts)
        first = min((f.days for f in forecasts if f.days is not None), default=None)
        series = tuple(one for forecast in forecasts
                       for one in _series(forecast, context, params.horizon_days if first is None else first))
        if first is None:
            return Finding(**base, severity=Severity.OK, measured=None, detail=detail, series=series,
                           measured_text=f"no crossing within {params.horizon_days:g} days")
        measured = round(first, 2)
        return Finding(**base, severity=check.judge(measured), measured=measured, detail=detail, series=series,
                       day=(context.period_end + timedelta(days=first)).date())


def _forecast(resource: _Resource, check_name: str, context: AuditContext, horizon_days: float) -> _Forecast:
    promql, points = context.one_series(check_name, resource.query)
    fit = fit_line(points, context.period_end.timestamp())
    days = None if fit is None else days_until_outside(fit, resource.low, resource.high)
    return _Forecast(resource, promql, points, fit, days if days is not None and days <= horizon_days else None)


def _describe(forecast: _Forecast, context: AuditContext, step_words: str, horizon_days: float) -> str:
    """``gpu_utilisation: linear fit over 168 hourly points, slope +0.01/day, residual SE 0.02; ...``"""
    fit, resource = forecast.fit, forecast.resource
    unit = f" {resource.unit}" if resource.unit else ""
    method = (f"{resource.name}: linear fit over {fit.points} {step_words} points, slope "
              f"{fit.slope_per_day:+.4g}{unit}/day, residual SE {fit.residual_se:.3g}{unit}, "
              f"{fit.intercept:.4g}{unit} at the period's end")
    if forecast.days is None:
        return f"{method}; stays {resource.staying} for the {horizon_days:g}-day horizon"
    if forecast.days == 0:
        return f"{method}; no longer {resource.staying} at the period's end"
    crossing = context.period_end + timedelta(days=forecast.days)
    return f"{method}; {resource.crossing} in {forecast.days:.1f} days, on {crossing:%Y-%m-%d}"


def _series(forecast: _Forecast, context: AuditContext, shown_days: float) -> tuple[Series, Series]:
    """The history and its fitted line, from the first point to ``shown_days`` past the period's end."""
    resource, fit, end_s = forecast.resource, forecast.fit, context.period_end.timestamp()
    first_s = forecast.points[0][0]
    line = ((first_s, fit.at((first_s - end_s) / DAY_S)), (end_s + shown_days * DAY_S, fit.at(shown_days)))
    return (Series(resource.name, tuple(forecast.points), resource.unit, resource.bounds()),
            Series(f"{resource.name} forecast", line, resource.unit))


def _step_words(step: timedelta) -> str:
    seconds = int(step.total_seconds())
    return {60: "minutely", 3600: "hourly", 86400: "daily"}.get(seconds, f"{seconds} s")
