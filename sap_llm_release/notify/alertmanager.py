"""The release's own alert to Alertmanager while it rolls back: ``SapLlmReleaseRollingBack`` on green's colour,
which inhibits the per-colour alerts (error rate, latency, inference failures) that failing green raises meanwhile
(stack/alertmanager.yml.tmpl). The release has paged on-call for the rollback itself, once; those alerts would page
again for the same incident. The alert ends by itself after ``hold`` (the rate windows of the alerts it covers)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

ROLLBACK_ALERT = "SapLlmReleaseRollingBack"


def rollback_alert(service: str, release_id: str, colour: str, now: datetime, hold: timedelta) -> dict:
    """The Alertmanager API v2 alert announcing the rollback of ``release_id``, whose green is ``colour``."""
    return {
        "labels": {"alertname": ROLLBACK_ALERT, "severity": "info", "service": service, "colour": colour,
                   "release_id": release_id},
        "annotations": {"summary": f"release {release_id} of {service} is rolling back from {colour}: its page "
                                   "stands for the alerts this colour raises meanwhile"},
        "startsAt": now.isoformat(),
        "endsAt": (now + hold).isoformat(),
    }


def post_alerts(base_urls: list[str], alerts: list[dict], timeout_s: float = 3.0) -> dict[str, str]:
    """Post ``alerts`` to every Alertmanager (an HA set deduplicates them); each URL's outcome, ``sent`` or why not."""
    outcomes = {}
    for base_url in base_urls:
        try:
            httpx.post(f"{base_url.rstrip('/')}/api/v2/alerts", json=alerts, timeout=timeout_s).raise_for_status()
            outcomes[base_url] = "sent"
        except httpx.HTTPError as exc:
            outcomes[base_url] = f"{type(exc).__name__}: {exc}"
    return outcomes
