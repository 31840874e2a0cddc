"""SLO analysis over one traffic window, fed by a scripted provider (each interval's answers awaited together)."""

from __future__ import annotations

import asyncio

import pytest

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.analysis.window import SLOQuery, WindowAnalysis

ERROR_RATE = SLOQuery("error_rate", "error_rate_promql", "<", 0.01)
THROUGHPUT = SLOQuery("throughput", "throughput_promql", ">", 5000)
ALERTS = SLOQuery("critical_alerts", "alerts_promql", "==", 0)


class ScriptedProvider:
    """Answers each PromQL query with the next scripted value; an exception instance is raised instead."""

    def __init__(self, script: dict[str, list]) -> None:
        self.script = {promql: list(values) for promql, values in script.items()}
        self.asked: list[str] = []

    async def query_many(self, promqls: list[str]) -> list[tuple[float | None, str]]:
        answers = []
        for promql in promqls:
            self.asked.append(promql)
            value = self.script[promql].pop(0)
            answers.append((None, str(value)) if isinstance(value, Exception) else (value, ""))
        return answers


def observe(analysis: WindowAnalysis, provider: ScriptedProvider) -> None:
    asyncio.run(analysis.observe(provider))


def _run(analysis: WindowAnalysis, provider: ScriptedProvider, rounds: int) -> list:
    outcomes = []
    for _ in range(rounds):
        observe(analysis, provider)
        outcomes.append(analysis.outcome(window_over=False))
    return outcomes


def test_fails_exactly_at_the_failure_limit():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.5, 0.001, 0.2]})
    assert _run(analysis, provider, 2) == [None, None]  # one failure: under the limit
    observe(analysis, provider)
    assert analysis.outcome(window_over=False) == (
        "failed",
        "SLO error_rate failed 2 of 3 checks (limit 2); worst 0.5, threshold < 0.01",
    )
    tally = analysis.tallies["error_rate"]
    assert (tally.checks, tally.failures, tally.no_data, tally.last, tally.worst) == (3, 2, 0, 0.2, 0.5)


def test_failure_limit_one_fails_on_first_bad_sample():
    analysis = WindowAnalysis([THROUGHPUT], failure_limit=1)
    observe(analysis, ScriptedProvider({"throughput_promql": [4999.0]}))
    assert analysis.outcome(window_over=False)[0] == "failed"


SEVERE_ERROR_RATE = SLOQuery("error_rate", "error_rate_promql", "<", 0.01, severe_op="<", severe_threshold=0.25,
                             severe_promql="error_rate_3s_promql", severe_events_promql="requests_3s_promql",
                             severe_min_events=10)


def test_a_severe_breach_over_the_short_window_fails_the_window_on_its_first_check():
    """Errors just began: the rate window still holds minutes of good answers (5 %), the last three scrapes show
    half the requests failing."""
    analysis = WindowAnalysis([SEVERE_ERROR_RATE, THROUGHPUT], failure_limit=2)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.05], "throughput_promql": [72000.0],
                                        "error_rate_3s_promql": [0.5], "requests_3s_promql": [12.0]}))
    assert analysis.outcome(window_over=False) == (
        "failed", "SLO error_rate failed 1 of 1 checks (severe bound < 0.25 breached by 0.5 over 12 events); worst "
                  "0.05, threshold < 0.01")
    assert analysis.summary()[0]["severe"] == "< 0.25 breached by 0.5 over 12 events"


def test_a_severe_value_resting_on_too_few_events_judges_nothing():
    """One error among two requests reads 50 %: no evidence of a broken green, only the threshold counts."""
    analysis = WindowAnalysis([SEVERE_ERROR_RATE], failure_limit=2)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.1], "error_rate_3s_promql": [0.5],
                                        "requests_3s_promql": [2.0]}))
    assert analysis.outcome(window_over=False) is None and analysis.tallies["error_rate"].severe == ""


def test_a_marginal_breach_under_the_severe_bound_still_needs_the_failure_limit():
    analysis = WindowAnalysis([SEVERE_ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.05, 0.06], "error_rate_3s_promql": [0.2, 0.1],
                                 "requests_3s_promql": [12.0, 12.0]})
    assert _run(analysis, provider, 2) == [None, ("failed", "SLO error_rate failed 2 of 2 checks (limit 2); worst "
                                                            "0.06, threshold < 0.01")]


def test_a_short_window_without_data_judges_nothing_severe_and_the_threshold_still_counts():
    """Too few scrapes in the short window (a rate needs two samples): no data there is no severe breach, and
    no pass either: the rate window's value is judged as always."""
    analysis = WindowAnalysis([SEVERE_ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.3, 0.3], "error_rate_3s_promql": [None, None],
                                 "requests_3s_promql": [None, None]})
    assert _run(analysis, provider, 2)[1][1].startswith("SLO error_rate failed 2 of 2 checks (limit 2)")
    assert analysis.tallies["error_rate"].severe == ""


def test_without_a_short_window_the_severe_bound_judges_the_rate_windows_value():
    analysis = WindowAnalysis([SLOQuery("error_rate", "error_rate_promql", "<", 0.01, "fail", "<", 0.25)], 2)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.3]}))
    assert analysis.outcome(window_over=False)[1].startswith(
        "SLO error_rate failed 1 of 1 checks (severe bound < 0.25 breached by 0.3)")


def test_noise_under_the_threshold_passes_every_window():
    """0.5 % errors against 1 %, spikes to 8 % over the last three scrapes (one error among a dozen requests),
    latency just under target, a scrape missed (no data once, under inconclusive): no window fails."""
    latency = SLOQuery("p95_latency", "p95_promql", "<", 1.5, "inconclusive")
    for seed in range(5):
        analysis = WindowAnalysis([SEVERE_ERROR_RATE, latency], failure_limit=2)
        rates = [0.005 + 0.001 * ((seed + i) % 4) for i in range(10)]  # 0.5 % to 0.8 %
        short = [0.08 if (seed + i) % 3 == 0 else 0.0 for i in range(10)]
        latencies = [1.49 - 0.01 * ((seed * 3 + i) % 5) for i in range(10)]
        latencies[seed] = MetricsUnavailable("scrape missed")
        provider = ScriptedProvider({"error_rate_promql": rates, "error_rate_3s_promql": short,
                                     "requests_3s_promql": [12.0] * 10, "p95_promql": latencies})
        assert _run(analysis, provider, 10) == [None] * 10
        assert analysis.outcome(window_over=True) == ("passed", "all SLOs met over the window")


COUNTED_ERROR_RATE = SLOQuery("error_rate", "error_rate_promql", "<", 0.01, counts_bad_promql="errors_promql",
                              counts_events_promql="requests_promql", counts_share=0.01, counts_confidence=0.95)


def test_a_breach_resting_on_too_few_bad_events_is_noise_and_the_window_passes_saying_so():
    """0.5 % errors at a few dozen requests a window: now and then two errors read 2 % against 1 %."""
    analysis = WindowAnalysis([COUNTED_ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.022, 0.0, 0.021], "errors_promql": [2.0, 0.0, 1.9],
                                 "requests_promql": [90.0, 88.0, 91.0]})
    assert _run(analysis, provider, 3) == [None, None, None]
    tally = analysis.tallies["error_rate"]
    assert (tally.failures, tally.within_noise, tally.worst) == (0, 2, 0.022)
    assert analysis.outcome(window_over=True) == (
        "passed", "all SLOs met over the window; checks past the threshold within noise: error_rate 2 of 3 "
                  "(0.021 within noise: 2 bad of 91 events, p=0.231 at an allowed share of 0.01)")


def test_a_breach_its_counts_make_significant_still_fails_at_the_failure_limit():
    analysis = WindowAnalysis([COUNTED_ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.06, 0.07], "errors_promql": [5.0, 6.0],
                                 "requests_promql": [90.0, 90.0]})
    assert _run(analysis, provider, 2) == [None, ("failed", "SLO error_rate failed 2 of 2 checks (limit 2); worst "
                                                            "0.07, threshold < 0.01")]
    assert analysis.tallies["error_rate"].within_noise == 0


def test_counts_without_data_leave_the_plain_threshold_to_judge():
    """Counts that cannot be read never excuse a breach."""
    analysis = WindowAnalysis([COUNTED_ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.022, 0.022], "errors_promql": [None, 2.0],
                                 "requests_promql": [90.0, MetricsUnavailable("timeout")]})
    assert _run(analysis, provider, 2)[1][0] == "failed"
    assert analysis.tallies["error_rate"].within_noise == 0


def test_counts_are_asked_in_the_same_request_after_the_severe_queries():
    slo = SLOQuery("error_rate", "error_rate_promql", "<", 0.01, severe_op="<", severe_threshold=0.25,
                   severe_promql="error_rate_3s_promql", severe_events_promql="requests_3s_promql",
                   severe_min_events=8, counts_bad_promql="errors_promql", counts_events_promql="requests_promql",
                   counts_share=0.01, counts_confidence=0.95)
    analysis = WindowAnalysis([slo, THROUGHPUT], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.3], "throughput_promql": [6000.0],
                                 "error_rate_3s_promql": [0.5], "requests_3s_promql": [4.0],
                                 "errors_promql": [27.0], "requests_promql": [90.0]})
    observe(analysis, provider)
    assert provider.asked == ["error_rate_promql", "throughput_promql", "error_rate_3s_promql",
                              "requests_3s_promql", "errors_promql", "requests_promql"]
    tally = analysis.tallies["error_rate"]
    assert (tally.severe, tally.failures, tally.within_noise) == ("", 1, 0)  # too few events for severe; 27 of 90


def test_passes_only_at_window_end():
    analysis = WindowAnalysis([ERROR_RATE, THROUGHPUT], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.0, 0.005, 0.009], "throughput_promql": [6000, 7000, 5001]})
    assert _run(analysis, provider, 3) == [None, None, None]
    assert analysis.outcome(window_over=True) == ("passed", "all SLOs met over the window")
    assert provider.asked == ["error_rate_promql", "throughput_promql"] * 3


def test_failure_still_decides_after_window_end():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=1)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.02]}))
    assert analysis.outcome(window_over=True)[0] == "failed"


def test_window_without_any_check_fails():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    assert analysis.outcome(window_over=False) is None
    assert analysis.outcome(window_over=True) == ("failed", "the window ended before any check ran")


def test_no_data_under_fail_counts_as_failure():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [None, 0.0, None]})
    assert _run(analysis, provider, 2) == [None, None]
    observe(analysis, provider)
    assert analysis.outcome(window_over=False) == (
        "failed",
        "SLO error_rate failed 2 of 3 checks (limit 2); worst 0.0, threshold < 0.01",
    )
    assert analysis.tallies["error_rate"].no_data == 2


def test_no_data_at_all_under_fail_reports_no_data():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    _run(analysis, ScriptedProvider({"error_rate_promql": [None, None]}), 2)
    assert analysis.outcome(window_over=False) == (
        "failed",
        "SLO error_rate failed 2 of 2 checks (limit 2); worst no data, threshold < 0.01",
    )


def test_no_data_under_inconclusive_does_not_count():
    inconclusive = SLOQuery("throughput", "throughput_promql", ">", 5000, no_data="inconclusive")
    analysis = WindowAnalysis([inconclusive], failure_limit=2)
    provider = ScriptedProvider({"throughput_promql": [None, None, 6000, None]})
    assert _run(analysis, provider, 4) == [None] * 4
    tally = analysis.tallies["throughput"]
    assert (tally.checks, tally.failures, tally.no_data) == (4, 0, 3)
    assert analysis.outcome(window_over=True) == ("passed", "all SLOs met over the window")


def test_inconclusive_slo_without_data_in_the_whole_window_fails_it():
    inconclusive = SLOQuery("throughput", "throughput_promql", ">", 5000, no_data="inconclusive")
    analysis = WindowAnalysis([ERROR_RATE, inconclusive], failure_limit=2)
    provider = ScriptedProvider({"error_rate_promql": [0.0] * 5, "throughput_promql": [None] * 5})
    assert _run(analysis, provider, 5) == [None] * 5  # never decided while the window runs
    assert analysis.never_measured() == ["throughput"]
    assert analysis.outcome(window_over=True) == ("failed", "SLOs throughput had no data in the whole window")


def test_unavailable_metrics_count_as_no_data_and_keep_the_error():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    down = MetricsUnavailable("Prometheus http://127.0.0.1:9 query failed: connection refused")
    provider = ScriptedProvider({"error_rate_promql": [0.0, down, down]})
    assert _run(analysis, provider, 2) == [None, None]
    assert analysis.tallies["error_rate"].last_error == str(down)
    observe(analysis, provider)
    assert analysis.outcome(window_over=False) == (
        "failed",
        "SLO error_rate failed 2 of 3 checks (limit 2); worst 0.0, threshold < 0.01; "
        f"last error: {down}",
    )
    assert analysis.tallies["error_rate"].no_data == 2


def test_unavailable_metrics_under_inconclusive():
    inconclusive = SLOQuery("error_rate", "error_rate_promql", "<", 0.01, no_data="inconclusive")
    analysis = WindowAnalysis([inconclusive], failure_limit=1)
    _run(analysis, ScriptedProvider({"error_rate_promql": [MetricsUnavailable("down")] * 3}), 3)
    assert analysis.tallies["error_rate"].failures == 0
    assert analysis.outcome(window_over=True) == ("failed", "SLOs error_rate had no data in the whole window")


def test_error_is_cleared_by_a_later_answer():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=5)
    _run(analysis, ScriptedProvider({"error_rate_promql": [MetricsUnavailable("down"), 0.0]}), 2)
    assert analysis.tallies["error_rate"].last_error == ""


@pytest.mark.parametrize(
    ("slo", "values", "worst"),
    [
        (ERROR_RATE, [0.001, 0.3, 0.02, 0.0], 0.3),  # upper bound: the highest value
        (THROUGHPUT, [9000, 4000, 8000, 4500], 4000),  # lower bound: the lowest value
        (ALERTS, [0, 2, -5, 1], -5),  # equality: the furthest from the bound
        (SLOQuery("p95", "p95_promql", "<=", 1.5), [None, 0.2, None, 0.1], 0.2),  # no data never is the worst
    ],
)
def test_worst_is_the_most_adverse_value(slo, values, worst):
    analysis = WindowAnalysis([slo], failure_limit=100)
    _run(analysis, ScriptedProvider({slo.promql: values}), len(values))
    assert analysis.tallies[slo.name].worst == worst
    assert analysis.tallies[slo.name].last == next(v for v in reversed(values) if v is not None)


def test_first_breached_slo_is_reported():
    analysis = WindowAnalysis([ERROR_RATE, THROUGHPUT], failure_limit=1)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.0], "throughput_promql": [10.0]}))
    status, reason = analysis.outcome(window_over=False)
    assert status == "failed"
    assert reason.startswith("SLO throughput failed 1 of 1 checks (limit 1); worst 10.0, threshold > 5000")


def test_summary_is_plain_data():
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2)
    observe(analysis, ScriptedProvider({"error_rate_promql": [0.002]}))
    assert analysis.summary() == [
        {
            "name": "error_rate",
            "threshold": "< 0.01",
            "checks": 1,
            "failures": 0,
            "no_data": 0,
            "last": 0.002,
            "worst": 0.002,
            "last_error": "",
            "severe": "",
            "within_noise": 0,
            "last_noise": "",
        }
    ]


def test_slo_query_bound():
    assert str(SLOQuery("p95", "q", "<", 1.5).bound) == "< 1.5"
    assert SLOQuery("alerts", "q", "==", 0).bound.met_by(0)


# -- a dead green --------------------------------------------------------------------------------------------------

SCRAPED = SLOQuery("green_scraped", "up_promql", "==", 1)
FRESH = SLOQuery("green_fresh", "age_promql", "<", 60)


class ScriptedProbe:
    """A probe answering the scripted ``(value, seen)`` pairs in turn."""

    def __init__(self, name: str, answers: list[tuple[float | None, str]]) -> None:
        self.slo = SLOQuery(name, f"GET {name}", "==", 1.0)
        self.answers = list(answers)

    async def check_async(self) -> tuple[float | None, str]:
        return self.answers.pop(0)


def test_a_dead_green_fails_on_its_health_while_its_rates_still_look_good():
    """After green dies its rates keep the samples from before the death for a whole rate window; its scrape
    target (down) and its series (stale: no data) fail at the limit meanwhile."""
    analysis = WindowAnalysis([SCRAPED, FRESH, ERROR_RATE], failure_limit=2)
    provider = ScriptedProvider({"up_promql": [1, 0, 0], "age_promql": [0.4, None, None],
                                 "error_rate_promql": [0.0, 0.0, 0.0]})
    assert _run(analysis, provider, 2) == [None, None]
    observe(analysis, provider)
    status, reason = analysis.outcome(window_over=False)
    assert status == "failed"
    assert reason == "SLO green_scraped failed 2 of 3 checks (limit 2); worst 0, threshold == 1"
    assert analysis.tallies["green_fresh"].failures == 2 and analysis.tallies["green_fresh"].no_data == 2
    assert analysis.tallies["error_rate"].failures == 0


def test_a_green_that_stops_answering_fails_the_window_through_its_probe():
    probe = ScriptedProbe("green_ready", [(1.0, "GET -> 200"), (0.0, "GET failed: ConnectError"),
                                          (0.0, "GET failed: ConnectError")])
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2, probes=[probe])
    provider = ScriptedProvider({"error_rate_promql": [0.0, 0.0, 0.0]})
    assert list(analysis.tallies) == ["green_ready", "error_rate"]  # asked first, reported first
    assert _run(analysis, provider, 3) == [None, None, (
        "failed", "SLO green_ready failed 2 of 3 checks (limit 2); worst 0.0, threshold == 1.0; "
                  "last error: GET failed: ConnectError")]


def test_a_probe_that_answers_keeps_no_error_and_passes():
    probe = ScriptedProbe("green_ready", [(0.0, "GET -> 503"), (1.0, "GET -> 200")])
    analysis = WindowAnalysis([ERROR_RATE], failure_limit=2, probes=[probe])
    _run(analysis, ScriptedProvider({"error_rate_promql": [0.0, 0.0]}), 2)
    tally = analysis.tallies["green_ready"]
    assert (tally.checks, tally.failures, tally.last_error) == (2, 1, "")
    assert analysis.outcome(window_over=True) == ("passed", "all SLOs met over the window")
