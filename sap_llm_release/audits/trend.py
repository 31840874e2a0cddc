"""A check's trend against the audit's earlier runs (the ledger's ``audit_check_history``): the values measured in
the last runs, oldest first, and how this run's value compares with them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sap_llm_release.audits.model import Finding

EARLIER_RUNS = 7


@dataclass(frozen=True)
class Trend:
    """The earlier runs' (period end, severity, measured value) of one check, oldest first."""

    earlier: tuple[tuple[datetime | str, str, float | None], ...]

    @classmethod
    def from_history(cls, rows: list[dict[str, Any]]) -> Trend:
        """From ``Ledger.audit_check_history`` rows (oldest first)."""
        return cls(tuple((row["period_end"], row["severity"], row["measured_value"]) for row in rows))

    def describe(self, finding: Finding) -> str:
        """``finding``'s value beside the earlier runs': the earlier values and severities, and whether this run's
        value is above, below or within their range (nothing to compare is said as such)."""
        if not self.earlier:
            return "first run of this check"
        values = [value for _, _, value in self.earlier if value is not None]
        earlier = ", ".join(f"{'no data' if value is None else f'{value:.4g}'} ({severity})"
                            for _, severity, value in self.earlier)
        text = f"last {len(self.earlier)} runs: {earlier}"
        if finding.measured is None or not values:
            return text
        if finding.measured > max(values):
            return f"{text}; now above all of them"
        if finding.measured < min(values):
            return f"{text}; now below all of them"
        return f"{text}; now within their range"
