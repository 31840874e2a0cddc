"""Ledger times back in UTC whichever database gave them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sap_llm_release.timestamps import recorded_time

UTC_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def test_sqlite_text_postgresql_datetimes_and_zoneless_times_are_the_same_utc_moment():
    assert recorded_time("2026-12-01T12:00:00+00:00") == UTC_NOON
    assert recorded_time("2026-12-01T13:00:00+01:00").tzinfo == timezone.utc
    assert recorded_time(datetime(2026, 12, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == UTC_NOON
    assert recorded_time(datetime(2026, 12, 1, 12, 0)) == UTC_NOON  # stored without a zone: UTC
