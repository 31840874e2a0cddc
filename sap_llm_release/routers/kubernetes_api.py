"""What the Kubernetes routers share: one API call on their routed object, its failures as RouterError."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import urllib3

from sap_llm_release.routers.base import RouterError


def call_api(describe: str, verb: str, method: Callable, *args: Any, timeout_s: float) -> Any:
    """``method(*args)`` with the timeout; an API error or a transport failure is a RouterError naming the object
    (``describe``), the verb, and the API's status and message."""
    from kubernetes.client.exceptions import ApiException

    try:
        return method(*args, _request_timeout=timeout_s)
    except ApiException as exc:
        raise RouterError(f"{describe} {verb} error: HTTP {exc.status} {exc.reason}{_detail(exc)}") from exc
    except urllib3.exceptions.HTTPError as exc:
        raise RouterError(f"{describe} {verb} error: {exc}") from exc


def _detail(exc: Exception) -> str:
    """The message of the Kubernetes Status in an ApiException's body, when there is one."""
    try:
        return f": {json.loads(exc.body)['message']}"
    except (TypeError, ValueError, KeyError):
        return ""
