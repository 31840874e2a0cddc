"""Alert routing, asked of the running systems: which Alertmanagers Prometheus sends alerts to, and, in each one's
running configuration, which receiver an alert of each severity reaches and whether that receiver has an integration
of an accepted kind (PagerDuty, Slack). Evaluated like Alertmanager's own route tree."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')


class AlertmanagerReceiversParams(Params):
    severities: list[str] = Field(min_length=1, description="alert severities that must reach an integration")
    integrations: list[str] = Field(min_length=1, description="accepted kinds, e.g. pagerduty, slack")


def _matches(route: dict, labels: dict[str, str]) -> bool:
    for name, value in (route.get("match") or {}).items():
        if labels.get(name) != str(value):
            return False
    for name, pattern in (route.get("match_re") or {}).items():
        if not re.fullmatch(str(pattern), labels.get(name, "")):
            return False
    for matcher in route.get("matchers") or []:
        parsed = _MATCHER.match(str(matcher))
        if not parsed:
            raise ValueError(f"matcher {matcher!r} cannot be read")
        name, op, value = parsed.groups()
        actual = labels.get(name, "")
        ok = {"=": actual == value, "!=": actual != value, "=~": re.fullmatch(value, actual) is not None,
              "!~": re.fullmatch(value, actual) is None}[op]
        if not ok:
            return False
    return True


def receivers_for(route: dict, labels: dict[str, str], inherited: str | None = None) -> list[str]:
    """The receivers an alert with ``labels`` is delivered to: the deepest matching routes (siblings after a match
    are tried only with ``continue: true``), each inheriting its parent's receiver."""
    receiver = route.get("receiver") or inherited
    found: list[str] = []
    for child in route.get("routes") or []:
        if _matches(child, labels):
            found += receivers_for(child, labels, receiver)
            if not child.get("continue", False):
                break
    return found or ([receiver] if receiver else [])


def integrations_of(config: dict, receiver: str) -> set[str]:
    for entry in config.get("receivers") or []:
        if entry.get("name") == receiver:
            return {key.removesuffix("_configs") for key, value in entry.items() if key.endswith("_configs") and value}
    return set()


class AlertmanagerReceivers(Check):
    """Measured: severities whose alerts reach no receiver with an accepted integration in some Alertmanager
    Prometheus uses. Prometheus sending to no Alertmanager at all is no measurement: it fails."""

    Params = AlertmanagerReceiversParams

    def run(self, params: AlertmanagerReceiversParams, threshold: Threshold | None,
            context: CheckContext) -> Evidence:
        metrics: Any = context.require("metrics")
        try:
            managers = metrics.alertmanagers()
            if not managers:
                return Evidence.unmeasured(threshold, "Prometheus sends alerts to no Alertmanager")
            lines, unrouted = [], 0
            for manager in managers:
                config = metrics.alertmanager_config(manager)
                for severity in params.severities:
                    receivers = receivers_for(config.get("route") or {}, {"severity": severity})
                    kinds = set().union(*(integrations_of(config, r) for r in receivers)) if receivers else set()
                    accepted = sorted(kinds & set(params.integrations))
                    unrouted += not accepted
                    lines.append(f"{manager} {severity} -> {', '.join(receivers) or 'no receiver'} "
                                 f"({', '.join(accepted) or 'no ' + '/'.join(params.integrations)})")
        except (MetricsUnavailable, ValueError) as exc:
            return Evidence.unmeasured(threshold, str(exc))
        return Evidence.compare(unrouted, threshold, "; ".join(lines))
