"""What an audit found: findings with a severity, the series they were judged on, the run they belong to."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class Severity(str, enum.Enum):
    """``ok``: the check measured and met its bounds; ``warning``: outside the warning bound; ``critical``: outside
    the critical bound, or nothing to measure where a critical answer was needed (unreachable backend)."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"ok": 0, "warning": 1, "critical": 2}[self.value]


def worst(severities: list[Severity]) -> Severity:
    """The most severe of ``severities`` (ok for none)."""
    return max(severities, key=lambda severity: severity.rank, default=Severity.OK)


@dataclass(frozen=True)
class Series:
    """One time series a finding was judged on, for its plot: ``points`` are (epoch seconds, value); ``bounds``
    names the lines drawn across it (e.g. ``{"warning": 0.01, "critical": 0.05}``)."""

    name: str
    points: tuple[tuple[float, float], ...]
    unit: str = ""
    bounds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """One check's verdict over the audit's period. ``measured`` is None when there was nothing to measure (the
    finding then says "no data" and is never ok) unless ``measured_text`` says what was measured that is not a number
    (a forecast with no crossing within its horizon); ``day`` is the day the measured value belongs to, when the
    check judges day by day (or forecasts a day); ``breakdown`` holds named parts of the measured value (cost by
    component)."""

    check: str
    kind: str
    severity: Severity
    measured: float | None
    threshold: str
    detail: str
    day: date | None = None
    evidence_uri: str = ""
    series: tuple[Series, ...] = ()
    breakdown: dict[str, float] = field(default_factory=dict)
    measured_text: str = ""

    def __post_init__(self) -> None:
        if self.measured is None and not self.measured_text and self.severity is Severity.OK:
            raise ValueError(f"finding {self.check}: no data is never ok")



@dataclass
class AuditRun:
    """One run of an audit (``daily``, ``weekly``, ``monthly``) over ``[period_start, period_end)`` (UTC)."""

    audit: str
    run_id: str
    period_start: datetime
    period_end: datetime
    findings: list[Finding] = field(default_factory=list)

    @property
    def severity(self) -> Severity:
        return worst([finding.severity for finding in self.findings])

    def counts(self) -> dict[str, int]:
        """How many findings of each severity, every severity named."""
        return {severity.value: sum(f.severity is severity for f in self.findings) for severity in Severity}
