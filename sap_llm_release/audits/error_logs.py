"""Error-log volume of the service over the audit's period: its ERROR (and worse) log lines, read where the target
keeps its logs (the context's ``logs``: the local stack's process log files, or the pods' logs on a cluster)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator

from sap_llm_release.audits.base import AuditContext, AuditKind, check_bounds, day_of, utc_text
from sap_llm_release.audits.model import Finding, Series
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.service_logs.base import LogsUnavailable

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck


class ErrorLogVolumeParams(Params):
    pattern: str = Field(default=r"\b(ERROR|CRITICAL|FATAL)\b", description="what makes a line an error line")
    per: Literal["period", "hour"] = Field(default="period", description="measure error lines in the whole period, "
                                                                         "or in its worst hour")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return pattern


class ErrorLogVolume(AuditKind):
    """Measured: the service's error lines in the period (or in its worst hour, on the day that hour fell), broken
    down by process or pod. Logs that cannot be read, or hold no line at all in the period, are no data."""

    Params = ErrorLogVolumeParams
    needs_target = True

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: ErrorLogVolumeParams = check.check_params
        if context.logs is None:
            raise CheckUnavailable("this target provides no service logs")
        try:
            lines = context.logs.lines(context.period_start, context.period_end)
        except LogsUnavailable as exc:
            raise CheckUnavailable(str(exc)) from None
        read = sum(map(len, lines.values()))
        if not read:
            raise CheckUnavailable(f"no log line of the service in the period ({context.logs.describe()})")
        matcher = re.compile(params.pattern)
        errors = {source: [(at, line) for at, line in found if matcher.search(line)]
                  for source, found in lines.items()}
        count = sum(map(len, errors.values()))
        series = _per_step(check, errors, context)
        measured, day = count, None
        detail = f"{count} of {read} log lines match {params.pattern!r} ({context.logs.describe()})"
        if params.per == "hour":
            at, worst_step = max(series.points, key=lambda point: point[1])
            measured = round(worst_step / (context.step / timedelta(hours=1)), 3)
            day = day_of(at, context.step)
            detail = f"worst hour {utc_text(at - context.step.total_seconds())}: {measured:g} error lines; {detail}"
        if count:
            first = min((entry for found in errors.values() for entry in found), key=lambda entry: entry[0])
            detail += f"; first: {first[1][:200]}"
        return Finding(check=check.name, kind="error_log_volume", severity=check.judge(measured), measured=measured,
                       threshold=check.bounds(), detail=detail, day=day,
                       breakdown={source: float(len(found)) for source, found in errors.items()}, series=(series,))


def _per_step(check: AuditCheck, errors: dict[str, list[tuple[datetime, str]]], context: AuditContext) -> Series:
    """Error lines per step of the period, each point at its step's end."""
    start, step = context.period_start, context.step
    steps = max(1, round((context.period_end - start) / step))
    counts = [0] * steps
    for moment, _ in (entry for found in errors.values() for entry in found):
        counts[min(steps - 1, int((moment - start) / step))] += 1
    points = tuple(((start + step * (index + 1)).timestamp(), float(value)) for index, value in enumerate(counts))
    return Series(check.name, points, "lines", check_bounds(check) if check.check_params.per == "hour" else {})
