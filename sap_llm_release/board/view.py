"""One release as its board shows it, read from its ledger record: the traffic split the router was last set to,
each phase's gates (measured against threshold, verdict, evidence), the approvals (open ones with their deadline),
each traffic window's verdict, rollbacks, and who triggered and who decided what. No Airflow here: the plugin
hands in the record and the spec, and serves what :func:`render_release` writes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

from sap_llm_release.spec import Phase, ReleaseSpec

_TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True,
                                undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
VERDICT_CLASSES = {"passed": "ok", "attested": "ok", "waived": "muted", "failed": "bad"}


@dataclass(frozen=True)
class PhaseView:
    name: str
    gates: list[dict[str, Any]]  # the latest row of each gate, in the order they were recorded

    @property
    def counts(self) -> str:
        tally: dict[str, int] = {}
        for gate in self.gates:
            tally[gate["verdict"]] = tally.get(gate["verdict"], 0) + 1
        return ", ".join(f"{count} {verdict}" for verdict, count in sorted(tally.items())) or "not reached"


def phases(record: dict[str, list[dict[str, Any]]], spec: ReleaseSpec) -> list[PhaseView]:
    """The spec's phases in checklist order, each with its gates' latest recorded rows (a retried gate: its last)."""
    latest = {row["gate"]: row for row in record["gate_results"]}
    return [PhaseView(phase.value, [row for row in latest.values() if row["phase"] == phase.value])
            for phase in Phase if any(gate.phase is phase for gate in spec.gates)]


def approvals(record: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each approval asked for, with its decision (None while it is open): who decided, how, when."""
    decided = {row["gate"]: row for row in record["approvals"]}
    return [{"approval": request["approval"], "opened_at": request["opened_at"], "deadline": request["deadline"],
             "evidence": _lines(request["evidence"]), "slack_ts": request["slack_ts"],
             "decision": decided.get(request["approval"])} for request in record["approval_requests"]]


def _lines(evidence: str) -> list[str]:
    """The evidence lines shown with an approval's buttons (the ledger keeps them as a JSON list)."""
    try:
        lines = json.loads(evidence)
    except ValueError:
        return [evidence]
    return [str(line) for line in lines] if isinstance(lines, list) else [str(lines)]


def traffic_split(record: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The split the router was last set to, as recorded (the release verifies every write against the router's
    live split before recording it); all on blue before the first shift."""
    if not record["traffic_changes"]:
        return {"blue": 100, "green": 0, "at": None, "reason": "no shift yet"}
    last = record["traffic_changes"][-1]
    return {"blue": last["blue_after"], "green": last["green_after"], "at": last["changed_at"],
            "reason": last["reason"]}


def outcome(record: dict[str, list[dict[str, Any]]]) -> str:
    """The release's last recorded event (started, green_deployed, ..., promoted, rolled_back, failed)."""
    return record["release_events"][-1]["event"] if record["release_events"] else "recorded"


def dry_run_plan(record: dict[str, list[dict[str, Any]]]) -> list[str]:
    """A dry run's plan, one action per item (the ``dry_run_plan`` event numbers its lines); empty for a release."""
    plans = [event["detail"] for event in record["release_events"] if event["event"] == "dry_run_plan"]
    return [re.sub(r"^\d+\. ", "", line) for line in plans[-1].splitlines()] if plans else []


def plot_href(release_id: str, step: str) -> str:
    return "plot.png?" + urlencode({"release_id": release_id, "step": step})


def render_release(record: dict[str, list[dict[str, Any]]], spec: ReleaseSpec) -> str:
    """The release's board page (links relative to the board's root)."""
    release = record["releases"][0]
    return _TEMPLATES.get_template("release.html.j2").render(
        release=release, outcome=outcome(record), split=traffic_split(record), phases=phases(record, spec),
        approvals=approvals(record), windows=record["slo_windows"], changes=record["traffic_changes"],
        rollbacks=record["rollbacks"], events=record["release_events"], verdict_classes=VERDICT_CLASSES,
        plan=dry_run_plan(record),
        plot_href=lambda step: plot_href(release["release_id"], step))


def render_index(releases: list[dict[str, Any]], audits: list[dict[str, Any]]) -> str:
    """The board's front page: the releases and audit runs the user may read, newest first."""
    return _TEMPLATES.get_template("index.html.j2").render(
        releases=[{**release, "href": "view?" + urlencode({"release_id": release["release_id"]})}
                  for release in releases], audits=audits)
