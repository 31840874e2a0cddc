"""Waiting for alerts to clear before traffic moves: each answer counted, the last check at the deadline, a refusal
naming what still fires, and no clearance on a Prometheus that does not answer."""

from __future__ import annotations

import asyncio

import pytest

from sap_llm_release.analysis.alerts import alert_name, wait_until_clear
from sap_llm_release.analysis.provider import MetricsUnavailable

SELECTOR = 'ALERTS{alertstate="firing",severity="critical"}'
PAGE = {"__name__": "ALERTS", "alertname": "SapLlmThroughputErrorBudgetBurnPage", "alertstate": "firing",
        "severity": "critical", "sloth_slo": "throughput"}
DOWN = {"__name__": "ALERTS", "alertname": "SapLlmApiEndpointDown", "alertstate": "firing", "severity": "critical"}


class ScriptedAlerts:
    """An alert source of the interface's shape answering from a script, one answer per check (the last repeats);
    an exception in the script is raised. Its clock moves only when the wait sleeps."""

    def __init__(self, *answers) -> None:
        self.answers, self.asked, self.now = list(answers), [], 0.0

    async def series(self, promql: str) -> list[dict[str, str]]:
        self.asked.append((self.now, promql))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def wait(source: ScriptedAlerts, wait_s: float = 10, interval_s: float = 4):
    return asyncio.run(wait_until_clear(source, SELECTOR, wait_s=wait_s, interval_s=interval_s,
                                        clock=lambda: source.now, sleep=source.sleep))


def test_nothing_firing_passes_at_the_first_check():
    source = ScriptedAlerts([])
    outcome = wait(source)
    assert outcome.passed and outcome.firing == [] and source.asked == [(0.0, SELECTOR)]
    assert (outcome.tally.checks, outcome.tally.failures, outcome.tally.last) == (1, 0, 0.0)


def test_an_alert_that_clears_within_the_wait_lets_the_release_go_after_it_has():
    source = ScriptedAlerts([PAGE, DOWN], [PAGE], [])
    outcome = wait(source)
    assert outcome.passed and [at for at, _ in source.asked] == [0.0, 4.0, 8.0]
    assert (outcome.tally.checks, outcome.tally.failures, outcome.tally.worst) == (3, 2, 2.0)
    assert outcome.reason == f"no alert firing ({SELECTOR}) at check 3, after 8 s"


def test_an_alert_still_firing_at_the_deadline_is_refused_by_name_after_a_last_check_at_the_deadline():
    source = ScriptedAlerts([PAGE, DOWN])
    outcome = wait(source)
    assert not outcome.passed and [at for at, _ in source.asked] == [0.0, 4.0, 8.0, 10.0]
    assert outcome.firing == ['SapLlmApiEndpointDown{severity="critical"}',
                              'SapLlmThroughputErrorBudgetBurnPage{severity="critical", sloth_slo="throughput"}']
    assert outcome.reason == ("refusing to move traffic into an incident: after 4 checks over 10 s (waiting at most "
                              "10 s), still firing: " + ", ".join(outcome.firing))
    assert (outcome.tally.checks, outcome.tally.failures) == (4, 4)


def test_a_prometheus_that_does_not_answer_never_clears_the_way():
    source = ScriptedAlerts(MetricsUnavailable("Prometheus http://p query failed: ConnectionRefused"))
    outcome = wait(source, wait_s=4)
    assert not outcome.passed and outcome.firing == []
    assert outcome.reason.endswith("Prometheus did not answer: Prometheus http://p query failed: ConnectionRefused")
    assert (outcome.tally.checks, outcome.tally.no_data, outcome.tally.failures) == (2, 2, 2)


def test_an_answer_after_an_unanswered_check_is_read_as_usual():
    outcome = wait(ScriptedAlerts(MetricsUnavailable("timeout"), []))
    assert outcome.passed and (outcome.tally.checks, outcome.tally.no_data, outcome.tally.last_error) == (2, 1, "")


@pytest.mark.parametrize("labels, name", [
    (PAGE, 'SapLlmThroughputErrorBudgetBurnPage{severity="critical", sloth_slo="throughput"}'),
    ({"__name__": "ALERTS"}, "?{}"),
])
def test_an_alert_is_named_with_the_labels_that_tell_it_apart(labels, name):
    assert alert_name(labels) == name
