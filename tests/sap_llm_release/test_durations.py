"""Durations as the spec and Prometheus write them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sap_llm_release.durations import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30m", 1800),
        ("1h", 3600),
        ("2s", 2),
        ("1.5s", 1.5),
        ("250ms", 0.25),
        ("30d", 30 * 86400),
        ("2w", 14 * 86400),
        ("1y", 365 * 86400),
        (" 5m ", 300),
        ("10 s", 10),
        (90, 90),
        (0.5, 0.5),
        (timedelta(minutes=2), 120),
    ],
)
def test_parses(value, seconds):
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", [0, -1, "0s", "0m", timedelta(0), timedelta(seconds=-3), 0.0])
def test_not_positive_is_refused(value):
    with pytest.raises(ValueError, match="must be greater than 0"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["", "m", "5", "5x", "-5m", "1h30m", "five minutes", None, [], "5M"])
def test_malformed_is_refused(value):
    with pytest.raises(ValueError, match=r"must be a duration like '30m', '1h' or '2s', got"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_seconds(value):
    with pytest.raises(ValueError, match="must be a duration like"):
        parse_duration(value)
