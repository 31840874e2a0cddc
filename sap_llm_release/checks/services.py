"""A backing service asked directly through its own client: Redis answers ``PING`` (redis-py), MongoDB the ``ping``
command (pymongo), a Gremlin server such as Azure Cosmos DB's Gremlin API evaluates ``g.inject(1)`` (gremlinpython,
GraphSON 2.0 as Cosmos DB requires); the tracing and logging backends answer their readiness endpoints
(OpenTelemetry collector health check, Jaeger admin, Loki ``/ready``). The service's URL comes from the target (the
local stack's own redis-server) or from its Airflow connection where one is configured; a service configured nowhere
cannot be checked, and the gate fails saying so.

A Gremlin URL is ``ws://`` or ``wss://`` with the credentials as its userinfo, both percent-encoded: for Cosmos DB
the username ``/dbs/<database>/colls/<graph>`` and the account key as password, as in
``wss://%2Fdbs%2Fkb%2Fcolls%2Fpmg:<key>@<account>.gremlin.cosmos.azure.com:443/``. No password is ever shown in the
evidence."""

from __future__ import annotations

import time
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, CheckUnavailable, Params
from sap_llm_release.evidence import Evidence, Threshold
from sap_llm_release.tls import default_tls

READINESS = {"otel_collector": ("/", None), "jaeger": ("/", None), "loki": ("/ready", "ready")}


class ServicePingParams(Params):
    service: Literal["redis", "mongodb", "cosmos_gremlin", "otel_collector", "jaeger", "loki"]
    timeout_s: float = Field(default=5.0, gt=0)


def _without_password(url: str) -> str:
    """``url`` with its password, if it has one, shown as ``***``; any number of hosts."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if ":" not in userinfo:
        return url
    return urlunsplit(parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hosts}"))


class ServicePing(Check):
    """Measured: 1 when the service answered its ping, 0 when it answered something else."""

    Params = ServicePingParams

    def run(self, params: ServicePingParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        url = context.services.get(params.service)
        if not url:
            raise CheckUnavailable(f"no {params.service} is configured for this target")
        if params.service in READINESS:
            return _http_ready(url.rstrip("/"), *READINESS[params.service], params.timeout_s, threshold)
        ping = {"redis": _ping_redis, "mongodb": _ping_mongodb, "cosmos_gremlin": _ping_gremlin}[params.service]
        return ping(url, params.timeout_s, threshold)


def _ping_redis(url: str, timeout_s: float, threshold: Threshold | None) -> Evidence:
    """``PING``: 1 when Redis answers PONG."""
    import redis

    shown = _without_password(url)
    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    started = time.monotonic()
    try:
        answered = client.ping()
    except redis.RedisError as exc:
        return Evidence.unmeasured(threshold, f"PING {shown} failed: {exc}", shown)
    finally:
        client.close()
    detail = f"PING {shown} -> {answered!r} in {_ms_since(started)}"
    return Evidence.compare(int(answered is True), threshold, detail, evidence_uri=shown)


def _ping_mongodb(url: str, timeout_s: float, threshold: Threshold | None) -> Evidence:
    """``ping`` on the admin database: 1 when MongoDB answers ok: 1."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    shown = _without_password(url)
    timeout_ms = int(timeout_s * 1000)
    started = time.monotonic()
    try:
        with MongoClient(
            url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, socketTimeoutMS=timeout_ms
        ) as client:
            answered = client.admin.command("ping")
    except PyMongoError as exc:
        return Evidence.unmeasured(threshold, f"ping {shown} failed: {exc}", shown)
    detail = f"ping {shown} -> {answered!r} in {_ms_since(started)}"
    return Evidence.compare(int(answered.get("ok") == 1), threshold, detail, evidence_uri=shown)


def _ping_gremlin(url: str, timeout_s: float, threshold: Threshold | None) -> Evidence:
    """``g.inject(1)`` in GraphSON 2.0, signed in with the URL's credentials: 1 when the server answers ``[1]``."""
    import aiohttp
    from gremlin_python.driver import client, serializer
    from gremlin_python.driver.protocol import ConfigurationError, GremlinServerError

    shown = _without_password(url)
    parts = urlsplit(url)
    gremlin = client.Client(
        urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])),
        "g",
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        message_serializer=serializer.GraphSONSerializersV2d0(),
        pool_size=1,
        transport_factory=lambda: _gremlin_transport(timeout_s),
    )
    started = time.monotonic()
    try:
        answered = gremlin.submit("g.inject(1)").all().result()
    # what the driver raises for a server that refuses, errs, closes or stays silent (TimeoutError is an OSError)
    except (GremlinServerError, ConfigurationError, aiohttp.ClientError, OSError, RuntimeError) as exc:
        return Evidence.unmeasured(threshold, f"g.inject(1) on {shown} failed: {exc!r}", shown)
    finally:
        gremlin.close()
    detail = f"g.inject(1) on {shown} -> {answered!r} in {_ms_since(started)}"
    return Evidence.compare(int(answered == [1]), threshold, detail, evidence_uri=shown)


def _gremlin_transport(timeout_s: float):
    """gremlinpython's WebSocket transport with reads, writes and the opening handshake all held to ``timeout_s``
    (its own handshake waits as long as aiohttp's default of five minutes), and closed when the handshake fails (the
    driver then loses track of it)."""
    import aiohttp
    from gremlin_python.driver.aiohttp.transport import AiohttpTransport

    class Transport(AiohttpTransport):
        def connect(self, url, headers=None):
            async def handshake():
                self._client_session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
                self._websocket = await self._client_session.ws_connect(url, headers=headers, **self._aiohttp_kwargs)

            try:
                self._loop.run_until_complete(handshake())
            except Exception:
                self.close()
                raise

    return Transport(read_timeout=timeout_s, write_timeout=timeout_s)


def _ms_since(started: float) -> str:
    return f"{(time.monotonic() - started) * 1000:.1f} ms"


def _http_ready(url: str, path: str, body: str | None, timeout_s: float, threshold: Threshold | None) -> Evidence:
    """1 when ``url + path`` answers 200 (with ``body`` in its text where one is expected), else 0."""
    try:
        response = httpx.get(url + path, timeout=timeout_s, verify=default_tls())
    except httpx.HTTPError as exc:
        return Evidence.unmeasured(threshold, f"GET {url}{path} failed: {exc!r}", url + path)
    ready = response.status_code == 200 and (body is None or body in response.text)
    detail = f"GET {url}{path} answered {response.status_code}: {response.text.strip()[:80]!r}"
    return Evidence.compare(int(ready), threshold, detail, evidence_uri=url + path)
