"""Order of the release rehearsals: a test that injects errors into green leaves the error-rate alert pending for
about a minute (the rule's rate window), and the next test that shifts traffic waits for it to clear
(``quiet_stack``). Tests that touch no traffic run in between, so that minute is spent rehearsing, not waiting."""

from __future__ import annotations

ORDER = (
    "test_clean_release_promotes_and_the_next_goes_to_the_free_slot",
    "test_a_release_on_the_cluster_promotes_through_the_httproute",
    "test_a_green_killed_during_a_window_fails_it_and_rolls_back_without_shifting_further",
    "test_a_green_dead_before_a_shift_is_not_shifted_to",
    "test_slo_breach_at_any_step_rolls_back_to_blue[5]",
    "test_prometheus_unreachable_during_a_window_rolls_back",
    "test_invalid_trigger_params_are_refused_naming_the_field",
    "test_slo_breach_at_any_step_rolls_back_to_blue[50]",
    "test_production_environment_needs_production_profile",
    "test_gate_failure_before_traffic_touches_nothing",
    "test_an_slo_breach_on_the_cluster_rolls_the_httproute_back",
    "test_a_job_that_leaves_no_result_fails_its_gates_and_is_recorded",
    "test_a_gpu_pod_that_fails_fails_its_job_with_the_pods_log_and_touches_no_traffic",
    "test_slo_breach_at_any_step_rolls_back_to_blue[100]",
    "test_slack_callbacks_are_checked_before_anything_is_resolved",
    "test_one_release_per_environment",
    "test_a_breach_while_an_approval_is_pending_rolls_back_without_any_answer",
)


def pytest_collection_modifyitems(items):
    """Put this directory's tests in ``ORDER``; any test not named there runs after them, in file order."""
    position = {name: index for index, name in enumerate(ORDER)}
    ours = [item for item in items if item.nodeid.startswith("tests/dags/")]
    if not ours:
        return
    first = items.index(ours[0])
    ours.sort(key=lambda item: position.get(item.name, len(ORDER)))
    rest = [item for item in items if not item.nodeid.startswith("tests/dags/")]
    items[:] = rest[:first] + ours + rest[first:]
