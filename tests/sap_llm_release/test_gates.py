"""Evaluating one gate under a profile: waived gates are recorded waived, scaled gates are measured against the
profile's bound and say so, unavailable checks fail."""

from __future__ import annotations

import sqlite3

from sap_llm_release.checks.base import CheckContext
from sap_llm_release.evidence import Verdict
from sap_llm_release.gates import evaluate_gate, phase_results
from sap_llm_release.rehearsal.stores import SCHEMAS
from sap_llm_release.spec import Phase

ACCURACY = "vision_encoder_classification_accuracy"
PARAMETERS = "weights_language_decoder"  # waived in the rehearsal: its tiny model has no 7B parameters


def _results(accuracy: float, parameters: int = 0) -> CheckContext:
    recorded = {"model_evaluation": {"vision_encoder": {"classification_accuracy": accuracy}},
                "weights_verification": {"language_decoder": {"parameters": parameters}}}
    return CheckContext(service="sap-llm", job_results=recorded.get)


def test_waived_gate_is_waived_even_when_the_check_would_fail(spec):
    profile = spec.profile("rehearsal")
    evidence = evaluate_gate(spec.gate(PARAMETERS), profile, _results(0.99, parameters=95_000))
    assert evidence.verdict is Verdict.WAIVED
    assert evidence.measured is None
    assert evidence.threshold == ">= 7000000000"
    assert evidence.detail == f"waived: {profile.waiver_for(PARAMETERS).reason}"


def test_waived_gate_is_never_passed_even_when_the_check_would_pass(spec):
    evidence = evaluate_gate(spec.gate(PARAMETERS), spec.profile("rehearsal"), _results(0.99, 7_100_000_000))
    assert evidence.verdict is Verdict.WAIVED


def test_same_gate_is_checked_in_production_and_the_rehearsal(spec):
    for profile in ("production", "rehearsal"):
        failed = evaluate_gate(spec.gate(ACCURACY), spec.profile(profile), _results(0.90))
        assert (failed.verdict, failed.measured, failed.threshold) == (Verdict.FAILED, 0.90, ">= 0.95")
        passed = evaluate_gate(spec.gate(ACCURACY), spec.profile(profile), _results(0.951))
        assert (passed.verdict, passed.measured) == (Verdict.PASSED, 0.951)


def test_scaled_gate_is_measured_against_the_profiles_bound_and_says_so(spec, tmp_path):
    store = tmp_path / "knowledge_base.sqlite"
    with sqlite3.connect(store) as db:
        db.executescript((SCHEMAS / "knowledge_base.sql").read_text())
        db.executemany("INSERT INTO apis VALUES (?, 'S/4HANA', 'documented')", [(f"API_{n}_SRV",) for n in range(21)])
    db.close()
    gate = spec.gate("knowledge_base_apis")
    scaled = spec.profile("rehearsal").scaled_threshold_for(gate.name)
    context = CheckContext(service="sap-llm", services={"knowledge_base": f"sqlite:///{store}"})
    rehearsal = evaluate_gate(gate, spec.profile("rehearsal"), context)
    production = evaluate_gate(gate, spec.profile("production"), context)
    query = "knowledge_base: SELECT count(*) FROM apis"
    assert (rehearsal.verdict, rehearsal.measured, rehearsal.threshold) == (Verdict.PASSED, 21, ">= 21")
    assert rehearsal.detail == f"{query}; held to >= 21 instead of >= 400: {scaled.reason}"
    assert (production.verdict, production.threshold, production.detail) == (Verdict.FAILED, ">= 400", query)


def test_scaled_gate_that_cannot_be_checked_still_fails(spec):
    evidence = evaluate_gate(spec.gate("knowledge_base_apis"), spec.profile("rehearsal"), CheckContext(service="s"))
    assert (evidence.verdict, evidence.threshold) == (Verdict.FAILED, ">= 21")
    assert evidence.detail.startswith("cannot check: no knowledge_base store is configured for this target; held to")


def test_unavailable_system_fails_with_the_reason(spec):
    evidence = evaluate_gate(spec.gate(ACCURACY), spec.profile("production"), CheckContext(service="sap-llm"))
    assert evidence.verdict is Verdict.FAILED
    assert evidence.measured is None
    assert evidence.threshold == ">= 0.95"
    assert evidence.detail == "cannot check: this target provides no job_results"


def test_unavailable_reason_from_the_context(spec):
    context = CheckContext(service="sap-llm", unavailable_reason="the kubernetes target is not built yet")
    evidence = evaluate_gate(spec.gate("prometheus_deployed"), spec.profile("production"), context)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.detail == "cannot check: the kubernetes target is not built yet"


def test_unavailable_gate_without_threshold(spec):
    context = CheckContext(service="sap-llm")
    evidence = evaluate_gate(spec.gate("logging_level_info"), spec.profile("production"), context)
    assert (evidence.verdict, evidence.threshold) == (Verdict.FAILED, "== 0")
    assert evidence.detail == "cannot check: this target provides no deployer"


def test_gate_name_reaches_the_check(spec):
    context = CheckContext(
        service="sap-llm", attestations={"dr_runbook": {"by": "Sam SRE", "link": "https://wiki/dr"}}
    )
    attested = evaluate_gate(spec.gate("dr_runbook"), spec.profile("production"), context)
    assert (attested.verdict, attested.evidence_uri) == (Verdict.ATTESTED, "https://wiki/dr")
    other = evaluate_gate(spec.gate("rollback_plan_documented"), spec.profile("production"), context)
    assert other.verdict is Verdict.FAILED
    assert context.gate_name == ""  # the caller's context is not changed


def test_phase_results_count_verdicts_per_phase_in_order(spec):
    gates = spec.gates_in(Phase.SMOKE_GREEN) + spec.gates_in(Phase.DEPLOY_GREEN)
    recorded = {gate.name: {"verdict": "passed"} for gate in gates}
    recorded["smoke_documents"] = {"verdict": "failed"}
    del recorded["smoke_health"]
    lines = phase_results(gates, recorded)
    smoke = len(spec.gates_in(Phase.SMOKE_GREEN))
    assert lines == [f"smoke_green: 1 failed, {smoke - 2} passed, 1 unrecorded",
                     f"deploy_green: {len(spec.gates_in(Phase.DEPLOY_GREEN))} passed"]


# -- a fix-forward past a spent error budget ---------------------------------------------------------------------------


class BudgetLeft:
    """A metrics provider of the interface's shape: the error budget remaining, whatever is asked."""

    def __init__(self, remaining: float) -> None:
        self.remaining = remaining

    def query(self, promql: str) -> float:
        return self.remaining


BUDGET = "error_budget_remaining"
APPROVAL = {"by": "sre-lead", "link": "https://incidents.example.com/INC-42"}


def _budget(spec, remaining: float, fix_forward: dict | None = None, requester: str = "alice"):
    context = CheckContext(service="sap-llm", metrics=BudgetLeft(remaining), fix_forward=fix_forward or {},
                           requester=requester)
    return evaluate_gate(spec.gate(BUDGET), spec.profile("production"), context)


def test_a_spent_budget_fails_unless_a_fix_forward_is_approved_and_then_says_what_it_measured(spec):
    refused = _budget(spec, -0.25)
    assert (refused.verdict, refused.measured, refused.threshold) == (Verdict.FAILED, -0.25, "> 0")
    fixed = _budget(spec, -0.25, {BUDGET: APPROVAL})
    assert (fixed.verdict, fixed.measured, fixed.threshold) == (Verdict.ATTESTED, -0.25, "> 0")
    assert fixed.detail.endswith("failed, let through as a fix-forward approved by sre-lead "
                                 "(https://incidents.example.com/INC-42)")
    assert fixed.extra["attested_by"] == "sre-lead" and fixed.evidence_uri == APPROVAL["link"]


def test_a_fix_forward_changes_nothing_while_budget_is_left(spec):
    assert _budget(spec, 0.4, {BUDGET: APPROVAL}).verdict is Verdict.PASSED


def test_a_fix_forward_approved_by_the_requester_or_a_stranger_is_refused(spec):
    own = _budget(spec, -0.25, {BUDGET: APPROVAL}, requester="sre-lead")
    assert own.verdict is Verdict.FAILED and own.detail.endswith(
        "fix-forward refused: 'sre-lead' is the requester, who may not approve their own fix-forward")
    stranger = _budget(spec, -0.25, {BUDGET: {**APPROVAL, "by": "mallory"}})
    assert stranger.verdict is Verdict.FAILED
    assert "fix-forward refused: 'mallory' is not one of the gate's fix-forward approvers" in stranger.detail


def test_a_gate_the_spec_does_not_let_fix_forward_stays_failed(spec):
    context = CheckContext(service="sap-llm", job_results={"model_evaluation": {
        "vision_encoder": {"classification_accuracy": 0.5}}}.get, fix_forward={ACCURACY: APPROVAL})
    assert evaluate_gate(spec.gate(ACCURACY), spec.profile("production"), context).verdict is Verdict.FAILED
