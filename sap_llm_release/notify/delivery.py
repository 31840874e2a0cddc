"""Deliver a notification with retries and backoff, and never let a failure reach the release."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            return Delivery(True, attempt, "sent", send())
        except Exception as exc:  # noqa: BLE001 - every client failure is a failed delivery, nothing more
            last = f"{type(exc).__name__}: {exc}"
            log.warning("%s: attempt %d/%d failed: %s", what, attempt, attempts, last)
            if attempt < attempts:
                sleep(backoff_s * 2 ** (attempt - 1))
    return Delivery(False, attempts, f"failed after {attempts} attempts: {last}"[:2000])
