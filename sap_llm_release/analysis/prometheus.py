"""Prometheus behind the metrics provider interface, through ``prometheus-api-client`` (blocking, for operators and
audits) and, for the triggers' windows, :class:`AsyncPrometheusProvider` (``aiohttp``: one triggerer process runs
hundreds of windows in one event loop; a thread per blocking query does not scale to them, and aiohttp spends about a
third of httpx's CPU on a request).

Every call verifies the server's certificate (the system trust store, or the CA bundle the connection names) and
carries the connection's credentials: HTTP basic auth, or a bearer token, as production Prometheus usually sits behind
an authenticating proxy. The credentials go only to the Prometheus URL itself, never to the Alertmanagers it names.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import requests
import yaml
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.tls import default_tls

BATCH_LABEL = "sap_llm_query"  # marks each query's series in a batch (AsyncPrometheusProvider.query_many)


@dataclass(frozen=True)
class PrometheusAccess:
    """Where Prometheus answers and how to reach it: ``ca_file`` (None: the system trust store), basic auth
    (``username`` + ``password``) or a ``bearer_token``. Plain data, so a trigger can carry it."""

    url: str
    ca_file: str | None = None
    username: str | None = None
    password: str | None = None
    bearer_token: str | None = None

    def __post_init__(self) -> None:
        if self.bearer_token and self.username:
            raise ValueError("Prometheus access: give basic auth (username, password) or a bearer token, not both")

    def session(self) -> requests.Session:
        """A session that verifies the server and authenticates to it."""
        session = requests.Session()
        session.verify = self.ca_file or True
        if self.username:
            session.auth = (self.username, self.password or "")
        elif self.bearer_token:
            session.headers["Authorization"] = f"Bearer {self.bearer_token}"
        return session

    def at(self, url: str) -> PrometheusAccess:
        """The same trust and credentials for another replica."""
        return PrometheusAccess(url, self.ca_file, self.username, self.password, self.bearer_token)

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in vars(self).items() if value is not None}

    def async_session(self, timeout_s: float) -> aiohttp.ClientSession:
        """An aiohttp session with the same trust and credentials (call it inside the event loop that uses it)."""
        trust = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else default_tls()
        headers = {"Authorization": f"Bearer {self.bearer_token}"} if self.bearer_token else {}
        auth = aiohttp.BasicAuth(self.username, self.password or "") if self.username else None
        return aiohttp.ClientSession(base_url=self.url.rstrip("/") + "/", headers=headers, auth=auth,
                                     timeout=aiohttp.ClientTimeout(total=timeout_s),
                                     connector=aiohttp.TCPConnector(ssl=trust))


class PrometheusProvider:
    def __init__(self, access: PrometheusAccess | str, timeout_s: float = 5.0) -> None:
        self.access = PrometheusAccess(access) if isinstance(access, str) else access
        self.url = self.access.url.rstrip("/")
        self._timeout_s = timeout_s
        self._session = self.access.session()
        # One quick retry at most: the analysis loop asks again every interval, and a slow failure would delay
        # the rollback it should trigger.
        retry = Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504))
        # a session of its own: the client mounts its retrying adapter on it, which the other endpoints do without
        self._client = PrometheusConnect(url=self.url, timeout=timeout_s, retry=retry, session=self.access.session())
        self.queries, self.query_seconds = 0, 0.0  # range and vector queries asked, and the time they took

    def query(self, promql: str) -> float | None:
        try:
            result = self._client.custom_query(query=promql)
        except (requests.RequestException, PrometheusApiClientException, KeyError, TypeError) as exc:
            # KeyError/TypeError: a 200 answer without ``data.result`` (e.g. from a proxy) is malformed, not a crash
            raise MetricsUnavailable(f"Prometheus {self.url} query {promql!r} failed: {exc}") from exc
        return _single_value(result, promql)

    def query_vector(self, promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
        """Every series of an instant query evaluated at ``at``: (labels, value)."""
        result = self._timed(lambda: self._client.custom_query(query=promql, params={"time": at.timestamp()}),
                             promql)
        try:
            return [(dict(series["metric"]), float(series["value"][1])) for series in result]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} answered {promql!r} with no vector: {exc!r}") from exc

    def query_range(self, promql: str, start: datetime, end: datetime, step: timedelta
                    ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        """Every series of a range query over [start, end] at ``step``: (labels, [(epoch s, value), ...]); NaN
        points (a ratio over no requests) are left out, as missing data."""
        result = self._timed(lambda: self._client.custom_query_range(
            query=promql, start_time=start, end_time=end, step=f"{int(step.total_seconds())}s"), promql)
        try:
            return [(dict(series["metric"]),
                     [(float(t), float(v)) for t, v in series["values"] if not math.isnan(float(v))])
                    for series in result]
        except (KeyError, TypeError, ValueError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} answered {promql!r} with no matrix: {exc!r}") from exc

    def _timed(self, ask, promql: str):
        started = time.perf_counter()
        try:
            return ask()
        except (requests.RequestException, PrometheusApiClientException) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} query {promql!r} failed: {exc}") from exc
        finally:
            self.queries += 1
            self.query_seconds += time.perf_counter() - started

    def ready(self) -> str:
        """The server's readiness answer (``/-/ready``); not ready or not answering raises."""
        try:
            response = self._get(f"{self.url}/-/ready")
        except requests.RequestException as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} did not answer /-/ready: {exc}") from exc
        if response.status_code != 200:
            raise MetricsUnavailable(f"Prometheus {self.url} is not ready: {response.status_code} "
                                     f"{response.text.strip()[:80]!r}")
        return response.text.strip()

    def flags(self) -> dict[str, str]:
        """The server's command-line flags (``/api/v1/status/flags``)."""
        return self._api("status/flags", "flags")

    def rules(self) -> list[dict]:
        """Every loaded rule (``/api/v1/rules``): ``name``, ``type`` (alerting / recording), ``health``,
        ``lastError``, and its group's name as ``group``."""
        data = self._api("rules", "rules")
        try:
            return [{**rule, "group": group["name"]} for group in data["groups"] for rule in group["rules"]]
        except (KeyError, TypeError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} rules are malformed: {exc!r}") from exc

    def targets(self) -> list[dict]:
        """The active scrape targets (``/api/v1/targets``): ``labels`` (``job`` among them), ``health``,
        ``lastError``, ``scrapeUrl``."""
        data = self._api("targets?state=active", "targets")
        try:
            return [dict(target) for target in data["activeTargets"]]
        except (KeyError, TypeError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} targets are malformed: {exc!r}") from exc

    def alertmanagers(self) -> list[str]:
        """Base URLs of the Alertmanagers this Prometheus sends alerts to (``/api/v1/alertmanagers``)."""
        data = self._api("alertmanagers", "alertmanagers")
        try:
            return [entry["url"].split("/api/")[0] for entry in data["activeAlertmanagers"]]
        except (KeyError, TypeError, AttributeError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} alertmanagers are malformed: {exc!r}") from exc

    def alertmanager_config(self, base_url: str) -> dict:
        """The configuration an Alertmanager runs (``/api/v2/status``, ``config.original``), parsed."""
        try:
            # the Alertmanager's own address: verified the same way, but never sent Prometheus's credentials
            response = requests.get(f"{base_url}/api/v2/status", timeout=self._timeout_s, verify=self._session.verify)
            response.raise_for_status()
            config = yaml.safe_load(response.json()["config"]["original"])
        except (requests.RequestException, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise MetricsUnavailable(f"Alertmanager {base_url} status could not be read: {exc}") from exc
        if not isinstance(config, dict):
            raise MetricsUnavailable(f"Alertmanager {base_url} runs no readable configuration")
        return config

    def _get(self, url: str) -> requests.Response:
        # verify passed explicitly: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own
        return self._session.get(url, timeout=self._timeout_s, verify=self._session.verify)

    def _api(self, path: str, what: str):
        try:
            response = self._get(f"{self.url}/api/v1/{path}")
            response.raise_for_status()
            return response.json()["data"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} {what} could not be read: {exc}") from exc


class AsyncPrometheusProvider:
    """Instant queries for the triggers' windows: ``async with`` it, then ``await query(promql)`` (one number, None
    for no data; :class:`MetricsUnavailable` when Prometheus does not answer, or answers something else than one
    series), or ``await query_many(promqls)`` for a window's whole check in one request."""

    def __init__(self, access: PrometheusAccess | str, timeout_s: float = 5.0) -> None:
        self.access = PrometheusAccess(access) if isinstance(access, str) else access
        self.url = self.access.url.rstrip("/")
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncPrometheusProvider:
        self._session = self.access.async_session(self._timeout_s)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def query(self, promql: str) -> float | None:
        return _single_value(await self._result(promql), promql)

    async def series(self, promql: str) -> list[dict[str, str]]:
        """The label sets of the instant vector ``promql`` selects (:class:`MetricsUnavailable` for anything else)."""
        result = await self._result(promql)
        if not isinstance(result, list) or not all(isinstance(s, dict) and "metric" in s for s in result):
            raise MetricsUnavailable(f"Prometheus {self.url} query {promql!r} did not answer an instant vector")
        return [series["metric"] for series in result]

    async def query_many(self, promqls: Sequence[str]) -> list[tuple[float | None, str]]:
        """Each query's number (or None) and the error that kept it from one (``""``), asked as one request: the
        queries joined with ``or``, each series marked with its query's index (``BATCH_LABEL``). A batch Prometheus
        refuses (a query that is not an instant vector, say) is asked query by query, so each error is its own."""
        batch = " or ".join(f'label_replace(({promql}), "{BATCH_LABEL}", "{index}", "", "")'
                            for index, promql in enumerate(promqls))
        try:
            result = await self._result(batch)
        except MetricsUnavailable:
            return list(await asyncio.gather(*(self._answer(promql) for promql in promqls)))
        marked: dict[str, list] = {}
        for series in result:
            marked.setdefault(series.get("metric", {}).get(BATCH_LABEL), []).append(series)
        answers = []
        for index, promql in enumerate(promqls):
            try:
                answers.append((_single_value(marked.get(str(index), []), promql), ""))
            except MetricsUnavailable as exc:
                answers.append((None, str(exc)))
        return answers

    async def _answer(self, promql: str) -> tuple[float | None, str]:
        try:
            return await self.query(promql), ""
        except MetricsUnavailable as exc:
            return None, str(exc)

    async def _result(self, promql: str) -> Any:
        try:
            async with self._session.get("api/v1/query", params={"query": promql}) as response:
                response.raise_for_status()
                answer = await response.json(content_type=None)
            result = answer["data"]["result"] if answer.get("status") == "success" else None
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MetricsUnavailable(f"Prometheus {self.url} query {promql!r} failed: {exc!r}") from exc
        if result is None:
            raise MetricsUnavailable(f"Prometheus {self.url} query {promql!r} failed: {answer.get('error')!r}")
        return result


def _single_value(result: list | tuple, promql: str) -> float | None:
    """Read one number from an instant-query result (a vector of at most one sample, or a scalar)."""
    if not result:
        return None
    if len(result) == 2 and not isinstance(result[0], dict):  # scalar: [timestamp, "value"]
        raw = result[1]
    elif len(result) == 1 and isinstance(result[0], dict) and "value" in result[0]:
        raw = result[0]["value"][1]
    else:
        raise MetricsUnavailable(f"query {promql!r} returned {len(result)} series; aggregate it to one")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise MetricsUnavailable(f"query {promql!r} returned a non-numeric value {raw!r}") from exc
    return None if math.isnan(value) else value
