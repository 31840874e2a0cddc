"""Lanes of the tests that use the live stack. Each lane runs on one pytest-xdist worker (``--dist loadgroup``), with
that worker's own live stack, in the order given: the lanes wait out their windows side by side. The stack's other
tests (a check against the live stack) open the lanes, dealt round-robin; a worker stops its stack when its next test
needs none (tests/conftest.py), so no stack idles on a worker that has moved on to the rest of the suite.

The lanes are balanced by the tests' durations in a loaded full run (the clean release's two full-spec releases alone
take a quarter of the rehearsals' time; a rollback's recovery window adds about ten seconds to each). A test that
injects errors into green leaves the error-rate alert pending for about a minute; the next test that shifts traffic
starts its Prometheus afresh (``quiet_stack``, about 6 s), so breaches are followed by tests that touch no traffic
where the balance allows. The audit DAGs' tests need no live stack and share a recorded history, so they run together
at the end of one lane.
Without xdist the lanes run one after another."""

from __future__ import annotations

import pytest

LANES = (
    (  # about 390 s in a loaded run
        "test_clean_release_promotes_and_the_next_goes_to_the_free_slot",
        "test_invalid_trigger_params_are_refused_naming_the_field",
    ),
    (  # about 420 s
        "test_a_release_on_the_cluster_promotes_through_the_httproute",
        "test_gate_failure_before_traffic_touches_nothing",
        "test_reloads_that_keep_not_taking_effect_end_in_a_loud_failure",
        "test_a_green_dead_before_a_shift_is_not_shifted_to",
        "test_prometheus_unreachable_during_a_window_rolls_back",
    ),
    (  # about 420 s
        "test_an_slo_breach_on_the_cluster_rolls_the_httproute_back",
        "test_slack_callbacks_are_checked_before_anything_is_resolved",
        "test_production_environment_needs_production_profile",
        "test_a_breach_while_an_approval_is_pending_rolls_back_without_any_answer",
        "test_one_release_per_environment",
        "test_slo_breach_at_any_step_rolls_back_to_blue[50]",
        "test_a_regression_during_the_bake_rolls_back_to_blue",
    ),
    (  # about 340 s, and the audits' 50 s
        "test_a_job_that_leaves_no_result_fails_its_gates_and_is_recorded",
        "test_slo_breach_at_any_step_rolls_back_to_blue[5]",
        "test_a_green_killed_during_a_window_fails_it_and_rolls_back_without_shifting_further",
        "test_a_reload_that_does_not_take_effect_is_not_recorded_as_done",
        "test_slo_breach_at_any_step_rolls_back_to_blue[100]",
        "test_a_gpu_pod_that_fails_fails_its_job_with_the_pods_log_and_touches_no_traffic",
        # spends the stack's error budget: last of the lane's releases, so none is refused for it
        "test_a_release_is_refused_before_anything_is_touched_while_the_error_budget_is_spent",
        "test_a_healthy_day_yields_no_warning_one_summary_and_no_page",
        "test_a_critical_finding_pages_once_and_the_next_clear_run_resolves_it",
        "test_the_weekly_audit_finds_each_injected_problem_on_its_day",
        "test_an_unreachable_prometheus_makes_the_audit_critical_and_the_report_is_still_written",
    ),
)


def uses_stack(item: pytest.Item) -> bool:
    """Whether ``item`` needs the live stack: its fixture closure holds ``local_stack`` (``fresh_stack`` and
    ``quiet_stack`` build on it)."""
    return "local_stack" in getattr(item, "fixturenames", ())


def _place(item: pytest.Item) -> tuple[int, int]:
    """``(lane, position)`` of a rehearsal, by its full name (a parametrized case) or its function's name."""
    for lane, names in enumerate(LANES):
        for position, name in enumerate(names):
            if item.name == name or item.originalname == name:
                return lane, position
    return len(LANES), 0


def order_in_lanes(items: list[pytest.Item]) -> None:
    """Put tests/dags' tests in their lanes' order and deal the live stack's other tests to the lanes' starts, each
    lane an xdist group; a test of tests/dags named in no lane runs after them, in file order, on whichever worker is
    free."""
    ours = [item for item in items if item.nodeid.startswith("tests/dags/")]
    stack_checks = [item for item in items if uses_stack(item) and not item.nodeid.startswith("tests/dags/")]
    if not ours and not stack_checks:
        return
    placed = {item: _place(item) for item in ours}
    placed.update({item: (index % len(LANES), -1) for index, item in enumerate(stack_checks)})
    first = min(items.index(item) for item in placed)
    for item, (lane, _) in placed.items():
        if lane < len(LANES):
            item.add_marker(pytest.mark.xdist_group(f"rehearsal-lane-{lane}"))
    rest = [item for item in items if item not in placed]
    lanes = sorted(placed, key=placed.__getitem__)
    items[:] = rest[:first] + lanes + rest[first:]
