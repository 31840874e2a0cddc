"""What a check found: the verdict, the measured value and the bound it was held to."""

from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt

Number = StrictInt | StrictFloat

COMPARATORS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


class Threshold(BaseModel):
    """A bound a measured value must meet, e.g. ``{op: ">=", value: 0.95}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    op: Literal[">=", ">", "<=", "<", "=="]
    value: Number
    unit: str = ""

    def met_by(self, measured: float) -> bool:
        return COMPARATORS[self.op](measured, self.value)

    def __str__(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.op} {self.value}{unit}"


class Verdict(str, enum.Enum):
    """``passed``/``failed`` were verified by a check; ``attested`` was confirmed by a named person;
    ``waived`` was not checked because the profile's target has no such system."""

    PASSED = "passed"
    FAILED = "failed"
    ATTESTED = "attested"
    WAIVED = "waived"

    @property
    def lets_release_continue(self) -> bool:
        return self is not Verdict.FAILED


@dataclass(frozen=True)
class Evidence:
    verdict: Verdict
    measured: Any = None
    threshold: str = ""
    detail: str = ""
    evidence_uri: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unmeasured(cls, threshold: Threshold | None, detail: str, evidence_uri: str = "") -> Evidence:
        """A failed check that measured nothing (unreachable, missing, unreadable): ``detail`` says why."""
        return cls(Verdict.FAILED, None, "" if threshold is None else str(threshold), detail, evidence_uri)

    @classmethod
    def compare(cls, measured: float | None, threshold: Threshold, detail: str = "", **kwargs: Any) -> Evidence:
        """Pass when ``measured`` meets ``threshold``; a missing measurement fails."""
        if measured is None:
            return cls(Verdict.FAILED, None, str(threshold), f"no measurement: {detail}".rstrip(": "), **kwargs)
        verdict = Verdict.PASSED if threshold.met_by(measured) else Verdict.FAILED
        return cls(verdict, measured, str(threshold), detail, **kwargs)

    def describe(self, gate: str) -> str:
        measured = "no data" if self.measured is None else self.measured
        text = f"gate {gate} {self.verdict.value}: measured {measured}"
        if self.threshold:
            text += f", threshold {self.threshold}"
        if self.detail:
            text += f" ({self.detail})"
        return text
