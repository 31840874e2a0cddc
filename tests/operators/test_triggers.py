"""The SLO window trigger serializes for the triggerer and decides on its own, with no side effects."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timedelta, timezone

from operators.triggers import SLOWindowTrigger


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _trigger(url: str, window_s: float, failure_limit: int = 2, no_data: str = "fail") -> SLOWindowTrigger:
    now = datetime.now(timezone.utc)
    return SLOWindowTrigger(
        prometheus_url=url,
        slos=[{"name": "error_rate", "promql": "vector(0)", "op": "<", "threshold": 0.01, "no_data": no_data}],
        failure_limit=failure_limit,
        interval_s=0.05,
        window_end=(now + timedelta(seconds=window_s)).isoformat(),
        window_start=now.isoformat(),
    )


async def _first_event(trigger: SLOWindowTrigger):
    async for event in trigger.run():
        return event.payload


def test_serialize_round_trips_and_accepts_old_kwargs():
    trigger = _trigger("http://127.0.0.1:9090", 30)
    path, kwargs = trigger.serialize()
    assert path == "operators.triggers.SLOWindowTrigger"
    again = SLOWindowTrigger(**kwargs, retired_option="from an older release")
    assert again.serialize() == (path, kwargs)


def test_unreachable_prometheus_fails_at_the_failure_limit_before_the_window_ends():
    started = datetime.now(timezone.utc)
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=30, failure_limit=2)))
    assert event["status"] == "failed"
    assert "error_rate failed 2 of 2 checks" in event["reason"]
    assert "failed" in event["reason"] and "Prometheus" in event["reason"]
    assert (datetime.now(timezone.utc) - started).total_seconds() < 10


def test_inconclusive_no_data_still_fails_the_window_at_its_end():
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=0.3, failure_limit=100, no_data="inconclusive")))
    assert event["status"] == "failed"
    assert "had no data in the whole window" in event["reason"]
    assert event["checks"][0]["failures"] == 0 and event["checks"][0]["no_data"] >= 1
