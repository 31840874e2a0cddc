"""What a person (or the clock, or a breach) decided at an approval, and the evidence put in front of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sap_llm_release.gates import phase_results
from sap_llm_release.spec import ReleaseSpec

APPROVE, REJECT = "Approve", "Reject"
SLACK_USER_PREFIX = "slack:"


@dataclass(frozen=True)
class Decision:
    decision: str  # approved | rejected | timed_out | superseded | refused (the ledger's approvals.decision)
    decided_by: str
    channel: str  # slack | airflow | system
    detail: str

    @property
    def approved(self) -> bool:
        return self.decision == "approved"


def decision_of(event: Mapping[str, Any], triggered_by: str) -> Decision:
    """The decision in a HITL resume event. Only an explicit Approve by someone other than the release's trigger
    approves: a timeout, a superseding SLO breach, an error and a self-approval from the UI do not (Slack
    self-approvals never get this far: the callback refuses them)."""
    if reason := event.get("superseded"):
        return Decision("superseded", "system", "system", f"superseded by the SLO analysis: {reason}")
    if "error" in event:
        if event.get("error_type") == "timeout":
            return Decision("timed_out", "system", "system", "no answer within the timeout")
        return Decision("refused", "system", "system", f"the answer could not be read: {event['error']}")
    user = event.get("responded_by_user")
    if user is None or event.get("timedout"):
        return Decision("timed_out", "system", "system", "no answer within the timeout: counted as a rejection")
    via_slack = str(user["id"]).startswith(SLACK_USER_PREFIX)
    who = str(user["id"]) if via_slack else str(user["name"])
    channel = "slack" if via_slack else "airflow"
    if list(event.get("chosen_options") or []) != [APPROVE]:
        return Decision("rejected", who, channel, f"rejected by {user['name']}")
    if not via_slack and user["name"] == triggered_by:
        return Decision("refused", who, channel,
                        f"four eyes: {triggered_by} triggered this release and may not approve it")
    return Decision("approved", who, channel, f"approved by {user['name']}")


def approval_evidence(ledger: Any, spec: ReleaseSpec, release_id: str) -> list[str]:
    """The release so far, one line each: gate verdicts by phase, every SLO window's verdict and measurements, and
    green's current share of traffic."""
    recorded = ledger.gate_verdicts(release_id)
    gates = [gate for gate in spec.gates if gate.name in recorded]
    lines = phase_results(gates, recorded)
    for window in ledger.slo_windows(release_id):
        measured = ", ".join(f"{check['name']} worst {_number(check['worst'])} ({check['threshold']})"
                             for check in json.loads(window["checks_json"]))
        lines.append(f"SLO window at {window['green_weight']} %: {window['verdict']}; {measured}")
    traffic = ledger.latest_traffic_change(release_id)
    lines.append(f"green serves {traffic['green_after']} % of traffic" if traffic else "green serves no traffic")
    return lines


def _number(value: Any) -> str:
    return "no data" if value is None else f"{value:.4g}"
