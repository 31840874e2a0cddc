"""PagerDuty Events API v2 for a release: one alert per release (its dedup key), triggered on trouble and
resolved once a rollback is verified healthy."""

from __future__ import annotations

from typing import Any


def dedup_key(release_id: str) -> str:
    """One key per release: repeated triggers update the same alert instead of paging again."""
    return f"sap-llm-release/{release_id}"


class Pager:
    """``client`` is a ``pagerduty.EventsApiV2Client`` (its ``base_url`` decides where events go). Its own retries
    (up to minutes of back-off on a dead network) are switched off: the notifier's delivery retries instead, so a
    page never holds a rollback for long."""

    def __init__(self, client: Any, source: str) -> None:
        client.retry, client.max_network_attempts = {}, 0
        self.client, self.source = client, source

    def trigger(self, release_id: str, summary: str, severity: str = "critical",
                details: dict | None = None) -> str:
        return self.trigger_key(dedup_key(release_id), summary, severity, details)

    def resolve(self, release_id: str) -> str:
        return self.client.resolve(dedup_key(release_id))

    def trigger_key(self, key: str, summary: str, severity: str = "critical", details: dict | None = None) -> str:
        """Trigger (or update) the alert under dedup key ``key``."""
        return self.client.trigger(summary[:1024], self.source, dedup_key=key, severity=severity,
                                   custom_details=details or {})

    def resolve_key(self, key: str) -> str:
        return self.client.resolve(key)
