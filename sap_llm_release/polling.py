"""Waiting for something to happen, in tenacity's idiom (the one retry library here; Airflow installs it).

Retries of a failing call use ``tenacity.Retrying`` where they are made, naming what they retry on and when they
give up; waiting for a state (a process gone, a server ready, a rollout done) is :func:`poll_until`, whose callers
state the deadline and the interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

T = TypeVar("T")


def poll_until(attempt: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float, interval_s: float,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call ``attempt`` every ``interval_s`` until ``done`` holds for its result or ``timeout_s`` has passed, and
    return the last result (the caller tells a success from a timeout with ``done``). An exception from
    ``attempt`` is not retried: it propagates at once."""
    retrying = Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(interval_s),
                        retry=retry_if_result(lambda result: not done(result)),
                        retry_error_callback=lambda state: state.outcome.result(), sleep=sleep)
    return retrying(attempt)
