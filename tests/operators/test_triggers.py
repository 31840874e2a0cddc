"""The release's triggers serialize for the triggerer and decide on their own: the SLO window trigger with no side
effects, the approval trigger closing Airflow's HITL record only on a breach or at its deadline."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from operators.triggers import AlertsClearTrigger, ApprovalGuardTrigger, RolloutTrigger, SLOWindowTrigger


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _trigger(url: str, window_s: float, failure_limit: int = 2, no_data: str = "fail",
             ready_url: str = "") -> SLOWindowTrigger:
    now = datetime.now(timezone.utc)
    return SLOWindowTrigger(
        prometheus_url=url,
        slos=[{"name": "error_rate", "promql": "vector(0)", "op": "<", "threshold": 0.01, "no_data": no_data}],
        failure_limit=failure_limit,
        interval_s=0.05,
        window_end=(now + timedelta(seconds=window_s)).isoformat(),
        window_start=now.isoformat(),
        ready_url=ready_url,
    )


async def _first_event(trigger: SLOWindowTrigger):
    async for event in trigger.run():
        return event.payload


def test_serialize_round_trips_and_accepts_old_kwargs():
    trigger = _trigger("http://127.0.0.1:9090", 30)
    path, kwargs = trigger.serialize()
    assert path == "operators.triggers.SLOWindowTrigger"
    again = SLOWindowTrigger(**kwargs, retired_option="from an older release")
    assert again.serialize() == (path, kwargs)


def test_the_window_reads_prometheus_with_the_connections_credentials():
    """A trigger carries Prometheus's access (Airflow stores trigger kwargs encrypted) and every query sends it."""
    import base64

    from sap_llm_release.analysis.prometheus import PrometheusAccess
    from tests.sap_llm_release.conftest import CannedPrometheus

    authorization = "Basic " + base64.b64encode(b"release:s3cret").decode()
    prometheus = CannedPrometheus(authorization=authorization)
    prometheus.scalar("vector(0)", "0")
    try:
        access = PrometheusAccess(prometheus.url, username="release", password="s3cret").to_dict()
        trigger = _trigger("", window_s=0.3)
        trigger = SLOWindowTrigger(**{**trigger.serialize()[1], "prometheus": access})
        event = asyncio.run(_first_event(trigger))
        unauthenticated = asyncio.run(_first_event(_trigger(prometheus.url, window_s=0.3)))
    finally:
        prometheus.close()
    assert event["status"] == "passed", event
    assert unauthenticated["status"] == "failed" and "401" in unauthenticated["reason"], unauthenticated
    assert authorization in prometheus.authorizations


def test_a_trigger_saved_before_the_readiness_probe_still_loads():
    _, kwargs = _trigger("http://127.0.0.1:9090", 30, ready_url="http://127.0.0.1:8002/health/ready").serialize()
    assert kwargs["ready_url"] == "http://127.0.0.1:8002/health/ready"
    del kwargs["ready_url"]
    assert SLOWindowTrigger(**kwargs).serialize()[1] == {**kwargs, "ready_url": ""}


def test_a_green_that_stops_answering_fails_the_window_through_its_readiness_probe():
    """Whatever the metrics say (here: nothing, counted neither way), green not answering fails at the limit."""
    ready_url = _dead_url() + "/health/ready"
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=30, no_data="inconclusive",
                                              ready_url=ready_url)))
    assert event["status"] == "failed"
    assert event["reason"].startswith("SLO green_ready failed 2 of 2 checks (limit 2); worst 0.0")
    assert f"GET {ready_url} failed: ClientConnectorError" in event["reason"]
    assert [tally["name"] for tally in event["checks"]] == ["green_ready", "error_rate"]


def test_unreachable_prometheus_fails_at_the_failure_limit_before_the_window_ends():
    started = datetime.now(timezone.utc)
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=30, failure_limit=2)))
    assert event["status"] == "failed"
    assert "error_rate failed 2 of 2 checks" in event["reason"]
    assert "failed" in event["reason"] and "Prometheus" in event["reason"]
    assert (datetime.now(timezone.utc) - started).total_seconds() < 10


def test_inconclusive_no_data_still_fails_the_window_at_its_end():
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=0.3, failure_limit=100, no_data="inconclusive")))
    assert event["status"] == "failed"
    assert "had no data in the whole window" in event["reason"]
    assert event["checks"][0]["failures"] == 0 and event["checks"][0]["no_data"] >= 1


def test_checks_are_due_at_fixed_times_and_the_event_says_how_late_each_ran():
    """A 0.3 s window at 0.05 s: six checks, the last at the window's end, each due at start + n intervals (a slow
    check does not push the next ones later); their lateness is reported."""
    event = asyncio.run(_first_event(_trigger(_dead_url(), window_s=0.3, failure_limit=100, no_data="inconclusive")))
    lags = event["check_lags_s"]
    assert len(lags) == event["checks"][0]["checks"] and 5 <= len(lags) <= 7
    assert all(0 <= lag < 0.5 for lag in lags)


class FakeHITLRecord:
    """Airflow's HITL record as the triggerer's supervisor answers for it: pending until ``answer`` is set."""

    def __init__(self) -> None:
        self.answer = None
        self.updates: list[list[str]] = []

    def send(self, msg):
        from airflow.sdk.api.datamodels._generated import HITLDetailResponse, HITLUser
        from airflow.sdk.execution_time.comms import UpdateHITLDetail

        if isinstance(msg, UpdateHITLDetail):
            self.updates.append(msg.chosen_options)
            self.answer = (msg.chosen_options, None)
        if self.answer is None:
            return HITLDetailResponse(response_received=False, responded_at=None, chosen_options=None)
        options, user = self.answer
        return HITLDetailResponse(response_received=True, responded_at=datetime.now(timezone.utc),
                                  chosen_options=options, responded_by_user=HITLUser(**user) if user else None)


def _approval_trigger(url: str, slos: bool = True, timeout_s: float = 30, ready_url: str = "") -> ApprovalGuardTrigger:
    return ApprovalGuardTrigger(
        ti_id=uuid.uuid4(), options=["Approve", "Reject"], params={}, defaults=["Reject"],
        timeout_datetime=datetime.now(timezone.utc) + timedelta(seconds=timeout_s), poke_interval=0.05,
        prometheus_url=url, failure_limit=2, interval_s=0.05, ready_url=ready_url,
        slos=[{"name": "error_rate", "promql": "vector(0)", "op": "<", "threshold": 0.01, "no_data": "fail"}]
        if slos else [],
    )


@pytest.fixture
def hitl_record(monkeypatch):
    from airflow.sdk.execution_time import task_runner

    record = FakeHITLRecord()
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", record, raising=False)
    return record


def test_approval_trigger_serializes_with_its_guard():
    trigger = _approval_trigger("http://127.0.0.1:9090")
    path, kwargs = trigger.serialize()
    assert path == "operators.triggers.ApprovalGuardTrigger"
    assert ApprovalGuardTrigger(**kwargs).serialize() == (path, kwargs)
    assert kwargs["ready_url"] == ""  # saved before the readiness probe: none
    kwargs["ready_url"] = "http://127.0.0.1:8002/health/ready"
    assert ApprovalGuardTrigger(**kwargs).serialize() == (path, kwargs)


def test_a_green_that_stops_answering_supersedes_the_approval(hitl_record):
    event = asyncio.run(_first_event(_approval_trigger(_dead_url(), ready_url=_dead_url() + "/health/ready")))
    assert event["superseded"].startswith("SLO green_ready failed 2 of 2 checks")
    assert hitl_record.updates == [["Reject"]]


def test_a_breach_while_waiting_supersedes_the_approval_and_closes_it(hitl_record):
    event = asyncio.run(_first_event(_approval_trigger(_dead_url())))
    assert "error_rate failed 2 of 2 checks" in event["superseded"]
    assert event["guard_checks"][0]["failures"] == 2
    assert hitl_record.updates == [["Reject"]]  # nobody can answer it any more


def test_an_answer_ends_the_wait_with_what_the_guard_saw(hitl_record):
    hitl_record.answer = (["Approve"], {"id": "slack:U0RELMGR01", "name": "sam (Slack U0RELMGR01)"})
    event = asyncio.run(_first_event(_approval_trigger(_dead_url())))
    assert event["chosen_options"] == ["Approve"] and event["responded_by_user"]["id"] == "slack:U0RELMGR01"
    assert "superseded" not in event and hitl_record.updates == []


def test_no_answer_by_the_deadline_records_the_default_reject(hitl_record):
    event = asyncio.run(_first_event(_approval_trigger(_dead_url(), slos=False, timeout_s=0.2)))
    assert event["chosen_options"] == ["Reject"] and event["timedout"] is True
    assert hitl_record.updates == [["Reject"]]


# -- alerts clear before traffic --------------------------------------------------------------------------------------

FIRING = 'ALERTS{alertstate="firing",severity="critical"}'


def _alerts_clear(url: str, wait_s: float) -> AlertsClearTrigger:
    now = datetime.now(timezone.utc)
    return AlertsClearTrigger(prometheus={"url": url}, alerts=FIRING, interval_s=0.05, started=now.isoformat(),
                              deadline=(now + timedelta(seconds=wait_s)).isoformat())


def _firing(prometheus, *alertnames: str) -> None:
    result = [{"metric": {"__name__": "ALERTS", "alertname": name, "alertstate": "firing", "severity": "critical"},
               "value": [1700000000.0, "1"]} for name in alertnames]
    prometheus.queries[FIRING] = (200, {"status": "success", "data": {"resultType": "vector", "result": result}})


def test_asked_now_nothing_firing_is_the_event_the_trigger_would_yield():
    """The sensor asks once in the worker before it defers: with nothing firing, the same passed window at once."""
    from tests.sap_llm_release.conftest import CannedPrometheus

    prometheus = CannedPrometheus()
    _firing(prometheus)
    try:
        trigger = _alerts_clear(prometheus.url, wait_s=60)
        now, deferred = trigger.ask_now(), asyncio.run(_first_event(trigger))
    finally:
        prometheus.close()
    for event in (now, deferred):
        assert event["status"] == "passed" and event["firing"] == [], event
        assert event["checks"][0]["checks"] == 1 and event["window_start"] == trigger.started
    assert now["reason"].startswith("no alert firing (ALERTS{")


def test_asked_now_a_firing_alert_or_no_answer_is_no_pass_and_does_not_wait():
    from tests.sap_llm_release.conftest import CannedPrometheus

    prometheus = CannedPrometheus()
    _firing(prometheus, "SapLlmHighErrorRate")
    started = time.monotonic()
    try:
        firing = _alerts_clear(prometheus.url, wait_s=60).ask_now()
    finally:
        prometheus.close()
    unanswered = _alerts_clear(_dead_url(), wait_s=60).ask_now()
    assert time.monotonic() - started < 5
    assert (firing["status"], firing["firing"]) == ("failed", ['SapLlmHighErrorRate{severity="critical"}']), firing
    assert unanswered["status"] == "failed" and "Prometheus did not answer" in unanswered["reason"], unanswered


# -- rollout -----------------------------------------------------------------------------------------------------------

def _deployment(name: str, conditions: list[dict] | None = None) -> dict:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "sap-llm-prod", "labels": {"app": "sap-llm"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "sap-llm"}},
                 "template": {"metadata": {"labels": {"app": "sap-llm"}},
                              "spec": {"containers": [{"name": "sap-llm", "image": "x@sha256:" + "a" * 64}]}}},
    }
    if conditions:
        deployment["status"] = {"conditions": conditions}
    return deployment


def _rollout(kube, name: str, wait_s: float) -> RolloutTrigger:
    return RolloutTrigger(target="kubernetes", colour="green", interval_s=0.05, namespace="sap-llm-prod",
                          deployment=name, connection_extras={"kube_config": kube.kube_config()},
                          deadline=(datetime.now(timezone.utc) + timedelta(seconds=wait_s)).isoformat())


def test_rollout_serializes_for_the_triggerer(kube_api):
    trigger = _rollout(kube_api, "sap-llm-green", 5)
    path, kwargs = trigger.serialize()
    assert path == "operators.triggers.RolloutTrigger"
    assert RolloutTrigger(**kwargs).serialize() == (path, kwargs)


def test_a_rolled_out_deployment_is_ready_through_the_async_client(kube_api):
    kube_api.put(_deployment("sap-llm-green"))
    event = asyncio.run(_first_event(_rollout(kube_api, "sap-llm-green", 5)))
    assert event["ready"] is True
    assert event["seen"] == "deployment sap-llm-prod/sap-llm-green: generation 1 observed 1, 2/2 ready, 2/2 updated"


def test_a_held_rollout_is_not_ready_at_the_deadline(kube_api):
    kube_api.hold_rollout("sap-llm-green")
    kube_api.put(_deployment("sap-llm-green"))
    started = time.monotonic()
    event = asyncio.run(_first_event(_rollout(kube_api, "sap-llm-green", 0.5)))
    assert event["ready"] is False and "0/2 ready" in event["seen"]
    assert 0.4 < time.monotonic() - started < 5


def test_a_stalled_rollout_ends_the_wait_at_once(kube_api):
    kube_api.hold_rollout("sap-llm-green")
    kube_api.put(_deployment("sap-llm-green", [{"type": "Progressing", "status": "False",
                                                "reason": "ProgressDeadlineExceeded",
                                                "message": "ReplicaSet has timed out progressing."}]))
    started = time.monotonic()
    event = asyncio.run(_first_event(_rollout(kube_api, "sap-llm-green", 30)))
    assert event["ready"] is False and "rollout stalled" in event["seen"] and "timed out progressing" in event["seen"]
    assert time.monotonic() - started < 5


def test_a_missing_deployment_is_not_ready_at_the_deadline(kube_api):
    event = asyncio.run(_first_event(_rollout(kube_api, "sap-llm-green", 0.3)))
    assert event["ready"] is False and "404" in event["seen"]


def _local_rollout(stack_dir, colour: str, wait_s: float) -> RolloutTrigger:
    return RolloutTrigger(target="local", colour=colour, interval_s=0.1, stack_dir=str(stack_dir),
                          deadline=(datetime.now(timezone.utc) + timedelta(seconds=wait_s)).isoformat())


@pytest.mark.stack
def test_the_local_stack_rollout_is_its_readiness_endpoint(fresh_stack):
    """Blue answers ready; green, which the fresh stack does not run, ends the wait at once."""
    ready = asyncio.run(_first_event(_local_rollout(fresh_stack.dir, "blue", 10)))
    assert ready["ready"] is True and "/health/ready -> 200" in ready["seen"]
    started = time.monotonic()
    absent = asyncio.run(_first_event(_local_rollout(fresh_stack.dir, "green", 30)))
    assert absent["ready"] is False and "local green is not running" in absent["seen"]
    assert time.monotonic() - started < 5
