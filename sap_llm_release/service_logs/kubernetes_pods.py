"""The service's pods on a cluster, through the Kubernetes API (``read_namespaced_pod_log`` with ``since_seconds``
and ``timestamps``, the official client the deployer uses). Only the logs the kubelet still holds are read: a pod
deleted during the period, or a container's run before its last restart, is not (a log aggregator keeps those)."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from sap_llm_release.deployers.kubernetes import CONTAINER, describe_api_error
from sap_llm_release.service_logs.base import LogsUnavailable


class KubernetesPodLogs:
    """The logs of container ``container`` of the pods ``selector`` picks in ``namespace``."""

    def __init__(self, api_client: Any, namespace: str, selector: str, container: str = CONTAINER,
                 request_timeout_s: float = 30.0) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.selector = selector
        self.container = container
        self.request_timeout_s = request_timeout_s

    def describe(self) -> str:
        return f"pods {self.namespace}/{self.selector}"

    def lines(self, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, str]]]:
        since_s = max(1, math.ceil((datetime.now(timezone.utc) - start).total_seconds()))
        pods = self._ask(f"{self.describe()}: list", self._core.list_namespaced_pod, self.namespace,
                         label_selector=self.selector)
        names = sorted(pod["metadata"]["name"] for pod in json.loads(pods).get("items") or [])
        return {name: _within(self._log(name, since_s), start, end) for name in names}

    def _log(self, name: str, since_s: int) -> str:
        body = self._ask(f"pod {self.namespace}/{name}: log", self._core.read_namespaced_pod_log, name,
                         self.namespace, container=self.container, since_seconds=since_s, timestamps=True,
                         absent=(400, 404))  # 400: not started yet; 404: gone since the list
        return (body or b"").decode(errors="replace")

    def _ask(self, what: str, method: Any, *args: Any, absent: tuple[int, ...] = (), **kwargs: Any) -> bytes | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return method(*args, _preload_content=False, _request_timeout=self.request_timeout_s, **kwargs).data
        except ApiException as exc:
            if exc.status in absent:
                return None
            raise LogsUnavailable(f"{what} failed: {describe_api_error(exc)}") from None
        except HTTPError as exc:
            raise LogsUnavailable(f"{what} failed: {exc!r}") from None


def _within(text: str, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """The lines of a ``timestamps=true`` log (``<RFC 3339> <line>``) stamped within ``[start, end)``, with their
    times."""
    kept = []
    for stamped in text.splitlines():
        stamp, _, line = stamped.partition(" ")
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            continue
        if start <= moment < end:
            kept.append((moment, line))
    return kept
