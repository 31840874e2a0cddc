"""The one-sided binomial test that tells a ratio SLO's breach from noise."""

from __future__ import annotations

import math

import pytest

from sap_llm_release.analysis.significance import CountedBreach, binomial_tail


def test_the_tail_matches_the_binomial_distribution_summed_by_hand():
    """P(X >= 2) for 90 requests at 1 %: one minus the chances of none and of exactly one."""
    by_hand = 1 - (0.99 ** 90 + 90 * 0.01 * 0.99 ** 89)
    assert binomial_tail(2, 90, 0.01) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.2273, abs=1e-4)


@pytest.mark.parametrize(("k", "n", "p"), [(0, 10, 0.3), (3, 10, 0.3), (10, 10, 0.3), (7, 20, 0.5), (1, 1, 0.01)])
def test_the_tail_sums_the_probability_mass_function(k, n, p):
    exact = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert binomial_tail(k, n, p) == pytest.approx(exact, rel=1e-12)


def test_the_tail_at_its_edges():
    assert binomial_tail(0, 50, 0.01) == 1.0
    assert binomial_tail(51, 50, 0.01) == 0.0
    assert binomial_tail(3, 50, 0.0) == 0.0
    assert binomial_tail(3, 50, 1.0) == 1.0


def test_the_tail_over_a_production_sized_sample_stays_a_probability_and_is_fast_to_sum():
    """A day of requests: the sum stops once its terms no longer count."""
    assert binomial_tail(10_300, 1_000_000, 0.01) == pytest.approx(0.00131, rel=0.05)  # 3 sigma above the mean
    assert 0.0 <= binomial_tail(9_000, 1_000_000, 0.01) <= 1.0


def test_two_errors_among_ninety_requests_are_noise_for_a_one_percent_bound():
    counted = CountedBreach.of(bad=2.04, events=89.7, share=0.01)  # increase() is extrapolated: rounded
    assert (counted.bad, counted.events) == (2, 90)
    assert not counted.significant(0.95)
    assert str(counted) == "2 bad of 90 events, p=0.227 at an allowed share of 0.01"


def test_a_broken_green_is_significant_on_a_handful_of_requests():
    assert CountedBreach.of(bad=3, events=3, share=0.01).significant(0.99)
    assert CountedBreach.of(bad=5, events=90, share=0.01).significant(0.99)
