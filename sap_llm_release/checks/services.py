"""A backing service asked directly: Redis answers ``PING`` through its own client; the tracing and logging backends
answer their readiness endpoints (OpenTelemetry collector health check, Jaeger admin, Loki ``/ready``). The service's
URL comes from the target (the local stack's own redis-server) or from its Airflow connection where one is
configured; a service configured nowhere cannot be checked, and the gate fails saying so."""

from __future__ import annotations

import time
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, CheckUnavailable, Params
from sap_llm_release.evidence import Evidence, Threshold, Verdict

READINESS = {"otel_collector": ("/", None), "jaeger": ("/", None), "loki": ("/ready", "ready")}


class ServicePingParams(Params):
    service: Literal["redis", "otel_collector", "jaeger", "loki"]
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
        url = context.services.get(params.service)
        if not url:
            raise CheckUnavailable(f"no {params.service} is configured for this target")
        shown = _without_password(url)
        if params.service in READINESS:
            return _http_ready(url.rstrip("/"), *READINESS[params.service], params.timeout_s, threshold)
        import redis

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


def _http_ready(url: str, path: str, body: str | None, timeout_s: float, threshold: Threshold | None) -> Evidence:
    """1 when ``url + path`` answers 200 (with ``body`` in its text where one is expected), else 0."""
    try:
        response = httpx.get(url + path, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return Evidence(Verdict.FAILED, None, str(threshold), f"GET {url}{path} failed: {exc!r}", url + path)
    ready = response.status_code == 200 and (body is None or body in response.text)
    detail = f"GET {url}{path} answered {response.status_code}: {response.text.strip()[:80]!r}"
    return Evidence.compare(int(ready), threshold, detail, evidence_uri=url + path)
