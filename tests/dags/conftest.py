"""Lanes of the release rehearsals. Each lane runs on one pytest-xdist worker (``--dist loadgroup``), with that
worker's own live stack, in the order given: the lanes wait out their windows side by side. Within a lane a test
that injects errors into green leaves the error-rate alert pending for about a minute (the rule's rate window), and
the next test that shifts traffic waits for it to clear (``quiet_stack``), so tests that touch no traffic follow the
breaches and that minute is spent rehearsing, not waiting. Without xdist the lanes run one after another."""

from __future__ import annotations

import pytest

LANES = (
    (
        "test_clean_release_promotes_and_the_next_goes_to_the_free_slot",
        "test_a_breach_while_an_approval_is_pending_rolls_back_without_any_answer",
        "test_invalid_trigger_params_are_refused_naming_the_field",
        "test_production_environment_needs_production_profile",
        "test_one_release_per_environment",
    ),
    (
        "test_a_release_on_the_cluster_promotes_through_the_httproute",
        "test_an_slo_breach_on_the_cluster_rolls_the_httproute_back",
        "test_a_gpu_pod_that_fails_fails_its_job_with_the_pods_log_and_touches_no_traffic",
        "test_gate_failure_before_traffic_touches_nothing",
        "test_slo_breach_at_any_step_rolls_back_to_blue[5]",
    ),
    (
        "test_a_green_killed_during_a_window_fails_it_and_rolls_back_without_shifting_further",
        "test_a_job_that_leaves_no_result_fails_its_gates_and_is_recorded",
        "test_a_green_dead_before_a_shift_is_not_shifted_to",
        "test_slo_breach_at_any_step_rolls_back_to_blue[50]",
        "test_slack_callbacks_are_checked_before_anything_is_resolved",
    ),
    (
        "test_a_reload_that_does_not_take_effect_is_not_recorded_as_done",
        "test_reloads_that_keep_not_taking_effect_end_in_a_loud_failure",
        "test_slo_breach_at_any_step_rolls_back_to_blue[100]",
        "test_prometheus_unreachable_during_a_window_rolls_back",
    ),
)


def _place(item: pytest.Item) -> tuple[int, int]:
    """``(lane, position)`` of a rehearsal, by its full name (a parametrized case) or its function's name."""
    for lane, names in enumerate(LANES):
        for position, name in enumerate(names):
            if item.name == name or item.originalname == name:
                return lane, position
    return len(LANES), 0


def pytest_collection_modifyitems(items):
    """Put this directory's tests in their lanes' order, each lane an xdist group; a test named in no lane runs
    after them, in file order, on whichever worker is free."""
    ours = [item for item in items if item.nodeid.startswith("tests/dags/")]
    if not ours:
        return
    first = items.index(ours[0])
    ours.sort(key=_place)
    for item in ours:
        lane, _ = _place(item)
        if lane < len(LANES):
            item.add_marker(pytest.mark.xdist_group(f"rehearsal-lane-{lane}"))
    rest = [item for item in items if not item.nodeid.startswith("tests/dags/")]
    items[:] = rest[:first] + ours + rest[first:]
