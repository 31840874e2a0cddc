"""A release's board read from its ledger record."""

from __future__ import annotations

from sap_llm_release.board.view import (
    approvals,
    dry_run_plan,
    outcome,
    phases,
    render_index,
    render_release,
    traffic_split,
)
from sap_llm_release.spec import load_spec
from tests.support.runs import SPEC_FILE

SPEC = load_spec(SPEC_FILE)


def _record(**tables) -> dict:
    empty = {table: [] for table in ("releases", "release_events", "gate_results", "slo_windows", "approval_requests",
                                     "approvals", "traffic_changes", "rollbacks")}
    return {**empty, **tables}


def _gate(gate: str, phase: str, verdict: str, measured: float | None = 1.0) -> dict:
    return {"gate": gate, "phase": phase, "verdict": verdict, "measured_value": measured, "measured_text": None,
            "threshold": "== 1", "detail": f"{gate} seen", "evidence_uri": "", "attested_by": None}


def test_each_phase_shows_the_latest_row_of_each_gate_in_checklist_order():
    record = _record(gate_results=[_gate("smoke_health", "smoke_green", "failed"),
                                   _gate("model_accuracy", "model_validation", "passed"),
                                   _gate("smoke_health", "smoke_green", "passed")])  # retried: the last row wins
    shown = {phase.name: phase for phase in phases(record, SPEC)}
    assert list(shown)[0] == "model_validation" and list(shown).index("smoke_green") > 0
    assert [g["verdict"] for g in shown["smoke_green"].gates] == ["passed"]
    assert shown["smoke_green"].counts == "1 passed" and shown["decommission_blue"].counts == "not reached"
    assert set(shown) == {gate.phase.value for gate in SPEC.gates}  # a phase without gates has no table


def test_the_split_is_the_last_recorded_change_and_all_blue_before_any():
    assert traffic_split(_record()) == {"blue": 100, "green": 0, "at": None, "reason": "no shift yet"}
    changes = [{"blue_after": 95, "green_after": 5, "changed_at": "t1", "reason": "shift"},
               {"blue_after": 100, "green_after": 0, "changed_at": "t2", "reason": "breach"}]
    assert traffic_split(_record(traffic_changes=changes)) == {"blue": 100, "green": 0, "at": "t2",
                                                               "reason": "breach"}


def test_an_approval_without_a_decision_is_open():
    requests = [{"approval": a, "opened_at": "t", "deadline": "d", "slack_ts": None,
                 "evidence": '["smoke_green: 4 passed", "green serves 5 % of traffic"]'}
                for a in ("first_shift_go", "full_traffic_go")]
    decided = [{"gate": "first_shift_go", "decision": "approved", "decided_by": "slack:U1", "channel": "slack"}]
    shown = approvals(_record(approval_requests=requests, approvals=decided))
    assert [(a["approval"], a["decision"] and a["decision"]["decided_by"]) for a in shown] == [
        ("first_shift_go", "slack:U1"), ("full_traffic_go", None)]
    assert shown[0]["evidence"] == ["smoke_green: 4 passed", "green serves 5 % of traffic"]


def test_the_outcome_is_the_last_event():
    assert outcome(_record()) == "recorded"
    assert outcome(_record(release_events=[{"event": "started"}, {"event": "promoted"}])) == "promoted"


def test_a_dry_runs_plan_is_listed_action_by_action_and_a_release_has_none():
    events = [{"event": "started"}, {"event": "dry_run_plan", "detail": "1. at the start: ask the SRE\n2. deploy"}]
    assert dry_run_plan(_record(release_events=events)) == ["at the start: ask the SRE", "deploy"]
    assert dry_run_plan(_record(release_events=[{"event": "started"}])) == []


def test_pages_escape_what_the_ledger_holds():
    release = {"release_id": "sap_llm_release:r1", "service": "sap-llm", "version": "1.1.0",
               "environment": "rehearsal", "profile": "rehearsal", "triggered_by": "<script>x</script>",
               "recorded_at": "t", "blue_slot": "blue", "run_id": "r1"}
    html = render_release(_record(releases=[release]), SPEC)
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>x" not in html
    index = render_index([{**release, "outcome": None}], [])
    assert 'href="view?release_id=sap_llm_release%3Ar1"' in index and "No audit run you may read" in index
