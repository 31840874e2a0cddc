"""The order in which the tests that use the live stack are handed out. pytest-xdist (``--dist loadgroup``, every test
a unit of its own) gives each worker the next test of the queue as it frees, and each worker runs its own live stack:
the checks against the live stack go first, then tests/dags' rehearsals in the order below (the full-spec releases,
the longest, among the first, so that none starts last and alone); then the rest of the suite in file order.

They were written as lanes, one pytest-xdist group per worker, but pytest 9.2 with pytest-xdist 3.8 does not group
(pytest-dev/pytest-xdist#1386: the group is written into a node id field pytest 9.2 no longer reads), so every figure
of the suite was measured with this order, each test taken by whichever worker is free. Nothing here relies on two tests
sharing a worker: a rehearsal that shifts traffic starts its stack's Prometheus afresh (``quiet_stack``), and a
worker stops its stack when its next test needs none (tests/conftest.py).
Without xdist the tests run one after another in the same order."""

from __future__ import annotations

import pytest

REHEARSALS = (
    "test_clean_release_promotes_and_the_next_goes_to_the_free_slot",
    "test_invalid_trigger_params_are_refused_naming_the_field",
    "test_a_release_on_the_cluster_promotes_through_the_httproute",
    "test_gate_failure_before_traffic_touches_nothing",
    "test_reloads_that_keep_not_taking_effect_end_in_a_loud_failure",
    "test_a_green_dead_before_a_shift_is_not_shifted_to",
    "test_prometheus_unreachable_during_a_window_rolls_back",
    "test_an_slo_breach_on_the_cluster_rolls_the_httproute_back",
    "test_slack_callbacks_are_checked_before_anything_is_resolved",
    "test_production_environment_needs_production_profile",
    "test_a_breach_while_an_approval_is_pending_rolls_back_without_any_answer",
    "test_one_release_per_environment",
    "test_slo_breach_at_any_step_rolls_back_to_blue[50]",
    "test_a_regression_during_the_bake_rolls_back_to_blue",
    "test_a_job_that_leaves_no_result_fails_its_gates_and_is_recorded",
    "test_slo_breach_at_any_step_rolls_back_to_blue[5]",
    "test_a_green_killed_during_a_window_fails_it_and_rolls_back_without_shifting_further",
    "test_a_reload_that_does_not_take_effect_is_not_recorded_as_done",
    "test_slo_breach_at_any_step_rolls_back_to_blue[100]",
    "test_a_gpu_pod_that_fails_fails_its_job_with_the_pods_log_and_touches_no_traffic",
    # spends its stack's error budget: among the last releases, so that few are left to be refused for it
    "test_a_release_is_refused_before_anything_is_touched_while_the_error_budget_is_spent",
    "test_a_healthy_day_yields_no_warning_one_summary_and_no_page",
    "test_a_critical_finding_pages_once_and_the_next_clear_run_resolves_it",
    "test_the_weekly_audit_finds_each_injected_problem_on_its_day",
    "test_an_unreachable_prometheus_makes_the_audit_critical_and_the_report_is_still_written",
)


def uses_stack(item: pytest.Item) -> bool:
    """Whether ``item`` needs the live stack: its fixture closure holds ``local_stack`` (``fresh_stack`` and
    ``quiet_stack`` build on it)."""
    return "local_stack" in getattr(item, "fixturenames", ())


def _position(item: pytest.Item) -> int:
    """Where a rehearsal goes, by its full name (a parametrized case) or its function's name; one named nowhere goes
    after the named ones."""
    for position, name in enumerate(REHEARSALS):
        if item.name == name or item.originalname == name:
            return position
    return len(REHEARSALS)


def order_the_queue(items: list[pytest.Item]) -> None:
    """Put the live stack's checks, then tests/dags' tests in ``REHEARSALS``' order (one named nowhere after them, in
    file order), where the first of them was collected."""
    ours = [item for item in items if item.nodeid.startswith("tests/dags/")]
    stack_checks = [item for item in items if uses_stack(item) and not item.nodeid.startswith("tests/dags/")]
    if not ours and not stack_checks:
        return
    placed = stack_checks + sorted(ours, key=_position)
    first = min(items.index(item) for item in placed)
    taken = set(placed)
    rest = [item for item in items if item not in taken]
    items[:] = rest[:first] + placed + rest[first:]
