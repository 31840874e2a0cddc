"""A backing service asked directly with its own client: Redis answers ``PING`` with ``PONG``. The service's URL comes
from the target (the local stack's own redis-server) or from its Airflow connection where one is configured."""

from __future__ import annotations

import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, CheckUnavailable, Params
from sap_llm_release.evidence import Evidence, Threshold, Verdict


class ServicePingParams(Params):
    service: Literal["redis"]
    timeout_s: float = Field(default=5.0, gt=0)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname}:{parts.port}"))


class ServicePing(Check):
    """Measured: 1 when the service answered its ping, 0 when it answered something else."""

    Params = ServicePingParams

    def run(self, params: ServicePingParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        import redis

        url = context.services.get(params.service)
        if not url:
            raise CheckUnavailable(f"no {params.service} is configured for this target")
        shown = _without_password(url)
        client = redis.Redis.from_url(url, socket_timeout=params.timeout_s, socket_connect_timeout=params.timeout_s)
        started = time.monotonic()
        try:
            answered = client.ping()
        except redis.RedisError as exc:
            return Evidence(Verdict.FAILED, None, str(threshold), f"PING {shown} failed: {exc}", shown)
        finally:
            client.close()
        elapsed_ms = (time.monotonic() - started) * 1000
        detail = f"PING {shown} -> {answered!r} in {elapsed_ms:.1f} ms"
        return Evidence.compare(int(answered is True), threshold, detail, evidence_uri=shown)
