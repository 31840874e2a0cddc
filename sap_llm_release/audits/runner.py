"""Running one audit check and carrying its finding between tasks: a backend that cannot be asked is a critical
finding, a system this target lacks is no data, and a check whose task died is critical too (never silently
missing from the report)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.audits.kinds import AUDIT_KINDS, AuditContext
from sap_llm_release.audits.model import Finding, Series, Severity
from sap_llm_release.audits.spec import AuditCheck
from sap_llm_release.checks.base import CheckUnavailable


def audit_period(end: datetime, period: timedelta) -> tuple[datetime, datetime]:
    """The period an audit run judges: the ``period`` before ``end`` (its scheduled time), to the second."""
    end = end.replace(microsecond=0)
    return end - period, end


def judge(check: AuditCheck, context: AuditContext) -> Finding:
    """``check``'s finding over the context's period."""
    try:
        return AUDIT_KINDS[check.kind]().run(check, context)
    except MetricsUnavailable as exc:
        return Finding(check=check.name, kind=check.kind, severity=Severity.CRITICAL, measured=None,
                       threshold=check.bounds(), detail=f"no data: Prometheus could not be asked: {exc}")
    except CheckUnavailable as exc:
        return Finding(check=check.name, kind=check.kind, severity=Severity(check.no_data), measured=None,
                       threshold=check.bounds(), detail=f"no data: {exc}")


def not_judged(check: AuditCheck, why: str) -> Finding:
    """The finding of a check whose task left none (it failed or was never run)."""
    return Finding(check=check.name, kind=check.kind, severity=Severity.CRITICAL, measured=None,
                   threshold=check.bounds(), detail=f"no data: not judged: {why}")


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """Plain JSON data (for XCom); :func:`finding_from_dict` reads it back."""
    data = dataclasses.asdict(finding)
    data["severity"] = finding.severity.value
    data["day"] = finding.day.isoformat() if finding.day else None
    return data


def finding_from_dict(data: dict[str, Any]) -> Finding:
    series = tuple(Series(s["name"], tuple(tuple(point) for point in s["points"]), s["unit"], dict(s["bounds"]))
                   for s in data.get("series") or ())
    return Finding(
        check=data["check"], kind=data["kind"], severity=Severity(data["severity"]), measured=data["measured"],
        threshold=data["threshold"], detail=data["detail"],
        day=date.fromisoformat(data["day"]) if data.get("day") else None, evidence_uri=data.get("evidence_uri", ""),
        series=series, breakdown=dict(data.get("breakdown") or {}), measured_text=data.get("measured_text") or "")
