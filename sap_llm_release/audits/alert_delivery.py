"""Checklist 10, daily, "verify all alerts working": a synthetic alert sent through the running Alertmanager(s),
its delivery to each receiver's integration confirmed from Alertmanager's own counters, then resolved.

The alert (``alertname=SapLlmAuditSyntheticAlert``, ``severity=critical``, ``synthetic="true"`` and an
``audit_run`` label unique to the run) is posted to every Alertmanager Prometheus sends alerts to, as Prometheus
would. ``GET /api/v2/alerts`` says it was accepted and which receivers it routes to; the running configuration says
which integrations (PagerDuty, Slack, ...) each receiver has. Then ``/metrics`` is polled until every one of those
integrations has answered at least one notification request with success (``alertmanager_notification_requests_total``
less ``alertmanager_notification_requests_failed_total``, summed over the Alertmanagers, against the readings taken
before the alert was sent) or the deadline passes. These counters are per integration, not per alert: another alert
notified through the same integration at the same moment counts too; a failing integration is still seen failing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

import httpx
import yaml
from pydantic import Field

from sap_llm_release.audits.base import AuditContext, AuditKind
from sap_llm_release.audits.model import Finding, Severity
from sap_llm_release.checks.alertmanager import integrations_of
from sap_llm_release.checks.base import CheckUnavailable, Params
from sap_llm_release.polling import poll_until
from sap_llm_release.tls import default_tls

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

SYNTHETIC_ALERT = "SapLlmAuditSyntheticAlert"
REQUESTS = "alertmanager_notification_requests_total"
FAILED_REQUESTS = "alertmanager_notification_requests_failed_total"


class AlertDeliveryParams(Params):
    integrations: list[str] = Field(default=["pagerduty", "slack"], min_length=1,
                                    description="integrations the synthetic alert must reach")
    deadline_s: float = Field(default=60, gt=0, le=600, description=(
        "how long to wait for every delivery after sending: the synthetic route's group_wait is 0 s "
        "(stack/alertmanager.yml.tmpl), so this covers the receivers' answers and Alertmanager's retries"))
    interval_s: float = Field(default=0.5, gt=0, le=10, description="how often Alertmanager's counters are read")
    on_failure: Literal["warning", "critical"] = "critical"


@dataclass(frozen=True)
class Delivery:
    """Per integration: notification requests answered with success, and failed, since the alert was sent."""

    succeeded: dict[str, int]
    failed: dict[str, int]

    def reached(self, integration: str) -> bool:
        return self.succeeded.get(integration, 0) > 0


class AlertDelivery(AuditKind):
    """Measured: how many of the receivers the synthetic alert routes to got it through every integration they
    have. Ok when all did and the required integrations are among them; ``on_failure`` otherwise, naming each
    receiver that did not. An Alertmanager that cannot be asked is no data."""

    Params = AlertDeliveryParams
    needs_threshold = False

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        params: AlertDeliveryParams = check.check_params
        managers = _alertmanagers(context)
        alert = synthetic_alert(context.service, uuid.uuid4().hex)
        with httpx.Client(verify=default_tls(), timeout=10) as http:
            before = _counters(http, managers)
            _post(http, managers, alert)
            try:
                routes = _routes(http, managers[0], alert)
                needed = set().union(*routes.values())
                delivery = poll_until(lambda: _delivery(before, _counters(http, managers)),
                                      lambda seen: all(seen.reached(kind) for kind in needed),
                                      timeout_s=params.deadline_s, interval_s=params.interval_s)
            finally:
                resolved = _resolve(http, managers, alert)
        return _finding(check, params, routes, delivery, resolved, alert)


def synthetic_alert(service: str, run_id: str) -> dict:
    """The alert posted (``POST /api/v2/alerts``): critical, marked synthetic, unique to the run."""
    return {"labels": {"alertname": SYNTHETIC_ALERT, "severity": "critical", "synthetic": "true",
                       "audit_run": run_id, "service": service},
            "annotations": {"summary": f"Synthetic alert of the daily audit of {service}: no action needed; it "
                                       "is resolved by the audit itself"},
            "startsAt": _now()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _alertmanagers(context: AuditContext) -> list[str]:
    """The Alertmanagers Prometheus sends alerts to (as the alertmanager_receivers release check finds them)."""
    if context.metrics is None:
        raise CheckUnavailable("no Prometheus to find the Alertmanagers with")
    managers = context.metrics.alertmanagers()
    if not managers:
        raise CheckUnavailable("Prometheus sends alerts to no Alertmanager")
    return managers


def _ask(http: httpx.Client, method: str, url: str, **kwargs) -> httpx.Response:
    try:
        response = http.request(method, url, **kwargs)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise CheckUnavailable(f"Alertmanager {method} {url} failed: {exc}") from None
    return response


def _post(http: httpx.Client, managers: list[str], alert: dict) -> None:
    for manager in managers:
        _ask(http, "POST", f"{manager}/api/v2/alerts", json=[alert])


def _resolve(http: httpx.Client, managers: list[str], alert: dict) -> str:
    """Post the alert again ending now; what went wrong, or "" when every Alertmanager took it."""
    try:
        _post(http, managers, {**alert, "endsAt": _now()})
    except CheckUnavailable as exc:
        return str(exc)
    return ""


def _routes(http: httpx.Client, manager: str, alert: dict) -> dict[str, set[str]]:
    """Receiver -> its integrations, for the receivers Alertmanager routes the posted alert to."""
    matcher = f'audit_run="{alert["labels"]["audit_run"]}"'
    found = _ask(http, "GET", f"{manager}/api/v2/alerts", params={"filter": matcher}).json()
    if not found:
        raise CheckUnavailable(f"Alertmanager {manager} did not keep the synthetic alert {matcher}")
    receivers = sorted({receiver["name"] for entry in found for receiver in entry.get("receivers") or []})
    try:
        config = yaml.safe_load(_ask(http, "GET", f"{manager}/api/v2/status").json()["config"]["original"])
    except (ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise CheckUnavailable(f"Alertmanager {manager} runs no readable configuration: {exc}") from None
    return {receiver: integrations_of(config, receiver) for receiver in receivers}


def _counters(http: httpx.Client, managers: list[str]) -> dict[tuple[str, str], float]:
    """(counter, integration) -> value summed over the Alertmanagers, for the notification request counters."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[tuple[str, str], float] = {}
    for manager in managers:
        text = _ask(http, "GET", f"{manager}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (REQUESTS, FAILED_REQUESTS) and "integration" in sample.labels:
                    key = (sample.name, sample.labels["integration"])
                    totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def _delivery(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> Delivery:
    integrations = {integration for _, integration in after}

    def increase(counter: str, integration: str) -> int:
        return round(after.get((counter, integration), 0.0) - before.get((counter, integration), 0.0))

    failed = {kind: increase(FAILED_REQUESTS, kind) for kind in integrations}
    return Delivery({kind: increase(REQUESTS, kind) - failed[kind] for kind in integrations}, failed)


def _finding(check: AuditCheck, params: AlertDeliveryParams, routes: dict[str, set[str]], delivery: Delivery,
             resolved: str, alert: dict) -> Finding:
    reached = [receiver for receiver, kinds in routes.items() if kinds and all(map(delivery.reached, kinds))]
    missing = sorted(set(params.integrations) - set().union(*routes.values()))
    parts = [f"{receiver} ({_describe(kinds, delivery)})" for receiver, kinds in routes.items()]
    detail = (f"synthetic alert {SYNTHETIC_ALERT} audit_run={alert['labels']['audit_run']}: "
              f"{len(reached)} of {len(routes)} receivers reached: {'; '.join(parts) or 'routed to no receiver'}")
    if missing:
        detail += f"; no receiver has {', '.join(missing)}"
    failed = [receiver for receiver in routes if receiver not in reached]
    if failed:
        detail += f"; not delivered within {params.deadline_s:g} s: {', '.join(failed)}"
    detail += f"; resolve failed: {resolved}" if resolved else "; resolved"
    ok = not failed and not missing and bool(routes)
    return Finding(check=check.name, kind="alert_delivery", measured=len(reached), detail=detail,
                   severity=Severity.OK if ok else Severity(params.on_failure),
                   threshold=f"every receiver reached, {', '.join(params.integrations)} among them")


def _describe(kinds: set[str], delivery: Delivery) -> str:
    if not kinds:
        return "no integration"
    return ", ".join(f"{kind}: {delivery.succeeded.get(kind, 0)} delivered, {delivery.failed.get(kind, 0)} failed"
                     for kind in sorted(kinds))
