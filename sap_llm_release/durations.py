"""Durations written the way Prometheus and the spec write them: 30m, 1h, 2s, 30d."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(value: Any) -> timedelta:
    """Parse ``"30m"``, ``"1h"``, ``"2s"``, a number of seconds or a timedelta; must be > 0."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("must be a duration like '30m', '1h' or '2s'")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"must be a duration like '30m', '1h' or '2s', got {value!r}")
    if seconds <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return timedelta(seconds=seconds)


