"""The service's pods' logs through the Kubernetes API (the stand-in), lines kept by the kubelet's timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sap_llm_release.service_logs.base import LogsUnavailable
from sap_llm_release.service_logs.kubernetes_pods import KubernetesPodLogs

NAMESPACE = "sap-llm-prod"


def pod(kube_api, name: str, app: str = "sap-llm") -> None:
    kube_api.put({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": app, "version": "blue"}},
                  "spec": {"containers": [{"name": "sap-llm", "image": "sap-llm@sha256:" + "0" * 64}]}})


def test_lines_of_the_apps_pods_within_the_period(kube_api):
    now = datetime.now(timezone.utc)
    start, end = now - timedelta(hours=2), now - timedelta(minutes=30)
    pod(kube_api, "sap-llm-blue-1")
    pod(kube_api, "other-app-1", app="other")
    kube_api.serve_pod_log(NAMESPACE, "sap-llm-blue-1", lambda: [
        (now - timedelta(hours=3), "ERROR before the period"),
        (now - timedelta(hours=1), "ERROR inside the period"),
        (now - timedelta(minutes=10), "ERROR after the period"),
    ])

    found = KubernetesPodLogs(kube_api.api_client(), NAMESPACE, "app=sap-llm").lines(start, end)

    assert list(found) == ["sap-llm-blue-1"]
    assert [line for _, line in found["sap-llm-blue-1"]] == ["ERROR inside the period"]
    assert abs(found["sap-llm-blue-1"][0][0] - (now - timedelta(hours=1))) < timedelta(milliseconds=1)
    log_request = next(seen for seen in kube_api.requests if seen.path.endswith("/log"))
    assert log_request.query["timestamps"].lower() == "true"
    assert 2 * 3600 <= int(log_request.query["sinceSeconds"]) <= 2 * 3600 + 60


def test_an_api_that_fails_is_unavailable(kube_api):
    kube_api.fail_next("GET", "/pods", 403, times=1)
    logs = KubernetesPodLogs(kube_api.api_client(), NAMESPACE, "app=sap-llm")
    now = datetime.now(timezone.utc)

    with pytest.raises(LogsUnavailable, match=r"^pods sap-llm-prod/app=sap-llm: list failed: 403"):
        logs.lines(now - timedelta(hours=1), now)
