"""The ``audits:`` section of the spec: per audit (daily, weekly, monthly) its schedule, the period it judges, the
resolution of its range queries, and its checks, each with a warning bound and, where it can be worse, a critical
one. Validated like the rest of the spec: an unknown kind, a bad schedule or a missing bound names the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import BeforeValidator

from sap_llm_release.audits.kinds import AUDIT_KINDS
from sap_llm_release.audits.model import Severity
from sap_llm_release.durations import parse_duration
from sap_llm_release.evidence import Threshold
from sap_llm_release.jobs.spec import InferenceJob

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
AUDIT_NAMES = ("daily", "weekly", "monthly")


class AuditCheck(BaseModel):
    """One audit check: ``warning`` is the bound a healthy service meets; ``critical``, when given, the bound past
    which the finding pages (same operator and unit, further out than ``warning``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,80}$")
    kind: str
    description: str = Field(default="", description="what the check tells a reader of the report")
    params: dict[str, Any] = Field(default_factory=dict)
    warning: Threshold | None = None
    critical: Threshold | None = None
    no_data: Literal["warning", "critical"] = Field(
        default="critical", description="the severity of a check that found nothing to measure (never ok)")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in AUDIT_KINDS:
            raise ValueError(f"unknown audit check kind {kind!r}; known kinds: {', '.join(sorted(AUDIT_KINDS))}")
        return kind

    @model_validator(mode="after")
    def _params_and_bounds_fit_kind(self) -> AuditCheck:
        kind = AUDIT_KINDS[self.kind]
        try:
            kind.Params.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError("; ".join(f"params.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                       for e in exc.errors())) from None
        if kind.needs_threshold and self.warning is None:
            raise ValueError(f"kind {self.kind!r} needs a warning bound")
        if not kind.needs_threshold and (self.warning or self.critical):
            raise ValueError(f"kind {self.kind!r} takes no bounds")
        if self.critical is not None:
            _require_further_out(self.warning, self.critical)
        return self

    @property
    def check_params(self) -> BaseModel:
        return AUDIT_KINDS[self.kind].Params.model_validate(self.params)

    def judge(self, measured: float | None) -> Severity:
        """The severity of ``measured``: ok within ``warning``; warning past it; critical past ``critical``."""
        if measured is None:
            return Severity(self.no_data)
        if self.warning is None or self.warning.met_by(measured):
            return Severity.OK
        if self.critical is not None and not self.critical.met_by(measured):
            return Severity.CRITICAL
        return Severity.WARNING

    def bounds(self) -> str:
        parts = [f"warning unless {self.warning}" if self.warning else "",
                 f"critical unless {self.critical}" if self.critical else ""]
        return "; ".join(part for part in parts if part)


def _require_further_out(warning: Threshold | None, critical: Threshold) -> None:
    if warning is None:
        raise ValueError("critical: give the warning bound too")
    if (critical.op, critical.unit) != (warning.op, warning.unit):
        raise ValueError(f"critical: must keep the warning bound's operator and unit ({warning})")
    looser = critical.value >= warning.value if warning.op in ("<", "<=") else critical.value <= warning.value
    if warning.op == "==" or not looser:
        raise ValueError(f"critical: {critical} must lie further out than the warning bound {warning}")


class Audit(BaseModel):
    """A scheduled audit: when it runs (cron), the period before each run it judges, and the step of its range
    queries (each point of a series is one step)."""

    model_config = ConfigDict(extra="forbid")

    schedule: str = Field(description="cron expression (UTC), e.g. '0 6 * * *'")
    period: Duration
    step: Duration = Field(description="resolution of the range queries; a series point covers one step")
    jobs: list[InferenceJob] = Field(default_factory=list, description="inference jobs run before the checks")
    checks: list[AuditCheck] = Field(min_length=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        if not croniter.is_valid(schedule):
            raise ValueError(f"{schedule!r} is not a cron expression (e.g. '0 6 * * *')")
        return schedule

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, checks: list[AuditCheck]) -> list[AuditCheck]:
        names = [check.name for check in checks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate check names {duplicates}")
        return checks

    @model_validator(mode="after")
    def _checks_name_the_audits_jobs(self) -> Audit:
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"jobs: duplicate job names {sorted({n for n in names if names.count(n) > 1})}")
        for index, check in enumerate(self.checks):
            job = check.params.get("job") if check.kind == "model_accuracy" else None
            if job is not None and job not in names:
                raise ValueError(f"checks.{index}.params.job: no job named {job!r} in this audit's jobs")
        return self

    @model_validator(mode="after")
    def _step_fits_period(self) -> Audit:
        if self.step > self.period:
            raise ValueError(f"step: {self.step} is longer than the period {self.period}")
        return self

    def job(self, name: str) -> InferenceJob:
        for job in self.jobs:
            if job.name == name:
                return job
        raise KeyError(f"no audit job named {name!r}")

    def check(self, name: str) -> AuditCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no audit check named {name!r}")


class Audits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily: Audit | None = None
    weekly: Audit | None = None
    monthly: Audit | None = None

    def named(self) -> dict[str, Audit]:
        """The audits the spec defines, by name, in daily / weekly / monthly order."""
        return {name: audit for name in AUDIT_NAMES if (audit := getattr(self, name)) is not None}
