"""The blue/green split."""

from __future__ import annotations

import pytest

from sap_llm_release.routers.base import ALL_BLUE, Weights


@pytest.mark.parametrize(("blue", "green"), [(100, 0), (95, 5), (50, 50), (0, 100)])
def test_valid_splits(blue, green):
    weights = Weights(blue, green)
    assert weights.as_tuple() == (blue, green)
    assert str(weights) == f"blue {blue}% / green {green}%"


def test_green_percent():
    assert Weights.green_percent(20) == Weights(80, 20)
    assert Weights.green_percent(100) == Weights(0, 100)
    assert ALL_BLUE == Weights(100, 0)


@pytest.mark.parametrize(
    ("blue", "green", "message"),
    [
        (101, -1, "weights.blue: must be an integer from 0 to 100, got 101"),
        (-5, 105, "weights.blue: must be an integer from 0 to 100, got -5"),
        (50, 50.0, "weights.green: must be an integer from 0 to 100, got 50.0"),
        (True, 99, "weights.blue: must be an integer from 0 to 100, got True"),
        ("95", 5, "weights.blue: must be an integer from 0 to 100, got '95'"),
        (90, 5, "weights: blue + green must be 100, got 90 + 5"),
        (0, 0, "weights: blue + green must be 100, got 0 + 0"),
    ],
)
def test_invalid_splits(blue, green, message):
    with pytest.raises(ValueError) as excinfo:
        Weights(blue, green)
    assert str(excinfo.value) == message


def test_green_percent_out_of_range():
    with pytest.raises(ValueError, match="weights.blue"):
        Weights.green_percent(101)
