"""Polling in tenacity's idiom: the last result on success or at the deadline, exceptions at once."""

from __future__ import annotations

import pytest

from sap_llm_release.polling import poll_until


class Clock:
    """A fake clock for tenacity's sleeps, so the test waits for nothing."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def test_returns_as_soon_as_done():
    answers, clock = iter([1, 2, 3, 4]), Clock()
    assert poll_until(lambda: next(answers), lambda n: n >= 3, timeout_s=60, interval_s=0.5, sleep=clock.sleep) == 3
    assert clock.slept == [0.5, 0.5]


def test_returns_the_last_result_at_the_deadline():
    calls = []
    result = poll_until(lambda: calls.append(1) or len(calls), lambda n: False, timeout_s=0.05, interval_s=0.01)
    assert result == len(calls) and len(calls) >= 2


def test_an_exception_is_not_retried():
    calls = []

    def broken():
        calls.append(1)
        raise OSError("unreachable")

    with pytest.raises(OSError, match="unreachable"):
        poll_until(broken, lambda _: True, timeout_s=60, interval_s=0.01)
    assert len(calls) == 1
