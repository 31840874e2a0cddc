"""The local stack's process logs: each slot's current and archived log files, lines kept by their own time."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.service_logs.base import LogsUnavailable
from sap_llm_release.service_logs.local_files import LocalProcessLogs, line_time

END = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)
START = END - timedelta(days=1)


def stamp(moment: datetime) -> str:
    """As the reference server writes it (logging's asctime, in UTC)."""
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d}"


def test_line_time_reads_the_servers_stamp_in_utc():
    assert line_time("2026-12-01 05:59:59,250 ERROR colour=blue") == datetime(2026, 12, 1, 5, 59, 59, 250000,
                                                                              tzinfo=timezone.utc)
    assert line_time("Traceback (most recent call last):") is None


def test_lines_within_the_period_from_current_and_archived_logs(tmp_path):
    (tmp_path / "blue.1700000000000.log").write_text(
        f"{stamp(START - timedelta(minutes=1))} ERROR before the period\n"
        f"{stamp(START)} ERROR at the period's start\n")
    os.utime(tmp_path / "blue.1700000000000.log", (START.timestamp(), START.timestamp()))
    (tmp_path / "blue.log").write_text(
        f"{stamp(END - timedelta(hours=1))} ERROR inference failed\n"
        "Traceback (most recent call last):\n"
        f"{stamp(END)} ERROR at the period's end, outside it\n")
    (tmp_path / "traffic.log").write_text(f"{stamp(END - timedelta(hours=2))} ERROR not the service\n")

    found = LocalProcessLogs(tmp_path).lines(START, END)

    assert found == {
        "blue": [(START, f"{stamp(START)} ERROR at the period's start"),
                 (END - timedelta(hours=1), f"{stamp(END - timedelta(hours=1))} ERROR inference failed"),
                 (END - timedelta(hours=1), "Traceback (most recent call last):")],
        "green": [],
    }


def test_no_service_log_file_at_all_is_unavailable(tmp_path):
    (tmp_path / "prometheus.log").write_text(f"{stamp(END - timedelta(hours=1))} ERROR\n")

    with pytest.raises(LogsUnavailable, match=r"no service log files \(blue, green\)"):
        LocalProcessLogs(tmp_path).lines(START, END)
