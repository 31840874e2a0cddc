"""``incident_retrospective``: the period's incidents, each with its timeline: the rollbacks and failed releases the
release ledger records (started, failure detected, rolled back, verified) and the alerts of a severity that fired
(Prometheus's ``ALERTS``: first and last firing sample). Prometheus must hold the service's samples for the period:
an empty Prometheus cannot tell that no alert fired, so it is no data, never "no incident"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind, PromqlTemplate, day_of, fired_alerts, utc_text
from sap_llm_release.audits.compliance import rollback_verified
from sap_llm_release.audits.model import Finding
from sap_llm_release.checks.base import Params
from sap_llm_release.timestamps import recorded_time

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

FAILED_OUTCOMES = ("rolled_back", "rollback_failed", "failed")


class IncidentRetrospectiveParams(Params):
    severity: str = Field(default="critical", pattern=r"^[a-z]+$", description="the alerts' severity label")
    resolution_s: int = Field(default=60, ge=1, le=3600, description="how finely firing time is counted")
    coverage: PromqlTemplate = Field(default='up{job="$service"}', description="a series Prometheus holds whenever "
                                                                               "it watched the service")


@dataclass(frozen=True)
class Incident:
    started_s: float
    timeline: str


class IncidentRetrospective(AuditKind):
    """Measured is the number of incidents; the detail gives each one's timeline, first first."""

    Params = IncidentRetrospectiveParams

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: IncidentRetrospectiveParams = check.check_params
        ledger = context.require_ledger()
        base = {"check": check.name, "kind": "incident_retrospective", "threshold": check.bounds()}
        coverage = f"count(count_over_time({context.promql(params.coverage)}[{context.period}]))"
        if not context.metrics.query_vector(coverage, context.period_end):
            return Finding(**base, severity=check.judge(None), measured=None,
                           detail=f"no data: Prometheus holds no sample of {params.coverage} in the period, so "
                                  f"whether alerts fired cannot be told")
        incidents = sorted(release_incidents(ledger, context) + alert_incidents(context, params),
                           key=lambda incident: incident.started_s)
        detail = "; ".join(incident.timeline for incident in incidents) or \
            f"no rollback, failed release or {params.severity} alert in the period"
        return Finding(**base, severity=check.judge(len(incidents)), measured=len(incidents), detail=detail,
                       day=day_of(incidents[0].started_s, timedelta()) if incidents else None)


def alert_incidents(context: AuditContext, params: IncidentRetrospectiveParams) -> list[Incident]:
    return [Incident(alert.first_s, f"alert {alert.key}: firing from {utc_text(alert.first_s)}, last seen firing "
                                    f"{utc_text(alert.last_s)} ({alert.minutes:.0f} min)")
            for alert in fired_alerts(context, params.severity, params.resolution_s)]


def release_incidents(ledger: Any, context: AuditContext) -> list[Incident]:
    """Each release rolled back in the period or that ended failed in it, once, with its timeline."""
    start, end, service = context.period_start, context.period_end, context.service
    rolled_back = {row["release_id"] for row in ledger.rollbacks_completed_between(start, end, service)}
    failed = {row["release_id"] for row in ledger.releases_ended_between(start, end, service, FAILED_OUTCOMES)}
    return [release_timeline(ledger, release_id) for release_id in sorted(rolled_back | failed)]


def release_timeline(ledger: Any, release_id: str) -> Incident:
    """``release R (rolled_back): started …, failure detected … (gate g failed), rolled back …, verified …``"""
    started = recorded_time(ledger.release(release_id)["recorded_at"])
    outcome = ledger.release_outcome(release_id)
    rollbacks = ledger.rollbacks(release_id)
    steps = [f"started {_text(started)}", _detection(ledger, release_id)]
    if rollbacks:
        last = rollbacks[-1]
        steps += [f"rolled back {_text(recorded_time(last['completed_at']))} (rollback started "
                  f"{_text(recorded_time(last['started_at']))})",
                  "verified: blue serves all traffic and is healthy" if rollback_verified(last)
                  else f"NOT verified: {last['detail'] or 'blue not healthy'}"]
    else:
        steps.append("no rollback")
    if outcome:
        steps.append(f"ended {_text(recorded_time(outcome['recorded_at']))}")
    label = outcome["event"] if outcome else "no outcome recorded"
    return Incident(started.timestamp(), f"release {release_id} ({label}): " + ", ".join(steps))


def _detection(ledger: Any, release_id: str) -> str:
    """When the release's first failure was recorded: a failed SLO window or a failed gate."""
    failures = [(recorded_time(row["recorded_at"]), f"SLO window {row['step']} failed: {row['reason']}")
                for row in ledger.slo_windows(release_id, verdict="failed")]
    failures += [(recorded_time(row["recorded_at"]), f"gate {gate} failed")
                 for gate, row in ledger.gate_verdicts(release_id).items() if row["verdict"] == "failed"]
    if not failures:
        return "failure detection not recorded"
    moment, what = min(failures, key=lambda failure: failure[0])
    return f"failure detected {_text(moment)} ({what})"


def _text(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
