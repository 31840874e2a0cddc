"""Deliver a notification with retries and backoff, and never let a failure reach the release."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    detail: str
    value: Any = None


def deliver(send: Callable[[], Any], what: str, *, attempts: int = 3, backoff_s: float = 0.5,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Call ``send`` up to ``attempts`` times, doubling the wait between tries. Any exception a Slack or PagerDuty
    client raises (HTTP errors, refused connections, API errors) is logged and retried; the last one is returned as
    the detail, never raised: a notification must not fail or block a release or its rollback."""
    def log_failure(state: RetryCallState) -> None:
        log.warning("%s: attempt %d/%d failed: %s", what, state.attempt_number, attempts, _failure(state.outcome))

    # every client failure is a failed attempt, nothing more; give up after ``attempts``
    retrying = Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=backoff_s),
                        retry=retry_if_exception_type(Exception), after=log_failure, sleep=sleep)
    try:
        value = retrying(send)
    except RetryError as exc:
        return Delivery(False, attempts, f"failed after {attempts} attempts: {_failure(exc.last_attempt)}"[:2000])
    return Delivery(True, retrying.statistics["attempt_number"], "sent", value)


def _failure(outcome: Future) -> str:
    """The exception of a failed attempt, in one line."""
    exc = outcome.exception()
    return f"{type(exc).__name__}: {exc}"
