"""The release's triggers, polling in the triggerer and holding no worker slot; each yields one event and returns.

:class:`SLOWindowTrigger` only reads metrics and GETs green's readiness endpoint, so running it again after a
triggerer restart is safe: the window end is absolute, the failure counts start again.
:class:`ApprovalGuardTrigger` also writes the approval's closing answer (the timeout's default, or superseded by a
breach) on Airflow's HITL record, which Airflow lets happen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.providers.standard.triggers.hitl import HITLTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent

from sap_llm_release.analysis.window import SLOQuery, WindowAnalysis


async def _traffic_off_green(emergency: dict[str, Any] | None, cause: str) -> dict[str, Any] | None:
    """All traffic to blue where the breach was decided, in a thread (the write blocks); what happened, for the
    event. A write that cannot be made is left to the rollback task, which does the same first."""
    if not emergency:
        return None
    from operators.runtime import take_traffic_off_green

    decided = datetime.now(timezone.utc).isoformat()
    moved, seen = await asyncio.to_thread(take_traffic_off_green, emergency, cause)
    return {"moved": moved, "seen": seen, "decided_at": decided, "done_at": datetime.now(timezone.utc).isoformat()}


@contextlib.asynccontextmanager
async def _watching(prometheus: dict[str, Any] | None, prometheus_url: str, ready_url: str,
                    ready_name: str = "") -> AsyncIterator[tuple[Any, list]]:
    """What a window asks, on async clients kept open while it lasts: the Prometheus a trigger reads (its access:
    URL, CA bundle, credentials, which Airflow keeps encrypted; or a bare URL for a trigger saved before it carried
    one) and the watched colour's readiness endpoint as a probe (none for a trigger saved without one)."""
    from sap_llm_release.analysis.prometheus import AsyncPrometheusProvider, PrometheusAccess
    from sap_llm_release.analysis.readiness import READY_CHECK, ReadinessProbe, probe_session

    access = PrometheusAccess(**prometheus) if prometheus else PrometheusAccess(prometheus_url)
    async with AsyncPrometheusProvider(access) as provider, probe_session() as client:
        yield provider, [ReadinessProbe(ready_url, ready_name or READY_CHECK, client=client)] if ready_url else []


class SLOWindowTrigger(BaseTrigger):
    def __init__(
        self,
        slos: list[dict[str, Any]],
        failure_limit: int,
        interval_s: float,
        window_end: str,
        window_start: str = "",
        ready_url: str = "",
        prometheus: dict[str, Any] | None = None,
        prometheus_url: str = "",
        ready_name: str = "",
        emergency: dict[str, Any] | None = None,
        **_unknown: Any,  # kwargs of older versions, so triggers saved before an upgrade still load
    ) -> None:
        super().__init__()
        self.prometheus = prometheus
        self.prometheus_url = prometheus_url
        self.slos = slos
        self.failure_limit = failure_limit
        self.interval_s = interval_s
        self.window_end = window_end
        self.window_start = window_start
        self.ready_url = ready_url  # green's readiness endpoint, asked each interval (empty: saved before it was)
        self.ready_name = ready_name  # the probe's name in the window's checks (empty: green's)
        self.emergency = emergency  # the release to take off green on a breach (none: watching blue)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "prometheus": self.prometheus,
                "prometheus_url": self.prometheus_url,
                "slos": self.slos,
                "failure_limit": self.failure_limit,
                "interval_s": self.interval_s,
                "window_end": self.window_end,
                "window_start": self.window_start,
                "ready_url": self.ready_url,
                "ready_name": self.ready_name,
                "emergency": self.emergency,
            },
        )

    async def run(self):
        """A check every interval from now, each due at a fixed time (start + n intervals, the last at the window's
        end) however long the one before took; how late each ran is in the event (``check_lags_s``)."""
        async with _watching(self.prometheus, self.prometheus_url, self.ready_url, self.ready_name) as watched:
            provider, probes = watched
            analysis = WindowAnalysis([SLOQuery(**slo) for slo in self.slos], self.failure_limit, probes=probes)
            end = datetime.fromisoformat(self.window_end)
            loop = asyncio.get_running_loop()
            started = loop.time()
            end_at = started + (end - datetime.now(timezone.utc)).total_seconds()
            lags: list[float] = []
            for count in itertools.count(1):
                due = min(started + count * self.interval_s, end_at)
                await asyncio.sleep(max(0.0, due - loop.time()))
                lags.append(round(max(0.0, loop.time() - due), 4))
                await analysis.observe(provider)
                if outcome := analysis.outcome(window_over=datetime.now(timezone.utc) >= end):
                    status, reason = outcome
                    off_green = await _traffic_off_green(self.emergency, reason) if status == "failed" else None
                    yield TriggerEvent({"status": status, "reason": reason, "checks": analysis.summary(),
                                        "window_start": self.window_start, "window_end": self.window_end,
                                        "check_lags_s": lags, "traffic_off_green": off_green})
                    return


class ApprovalGuardTrigger(HITLTrigger):
    """Waits for a person's answer to an approval like :class:`HITLTrigger` (a timeout records the default,
    Reject) and, while green carries traffic, keeps analysing its SLOs: a breach closes the approval as superseded
    at once, so the rollback never waits for a person (fluxcd/flagger#1801)."""

    def __init__(self, *, prometheus: dict[str, Any] | None = None, prometheus_url: str = "",
                 slos: list[dict[str, Any]] | None = None, failure_limit: int = 1, interval_s: float = 60.0,
                 ready_url: str = "", emergency: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prometheus, self.prometheus_url, self.emergency = prometheus, prometheus_url, emergency
        self.slos = slos or []
        self.failure_limit = failure_limit
        self.interval_s = interval_s
        self.ready_url = ready_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {**kwargs, "prometheus": self.prometheus, "prometheus_url": self.prometheus_url, "slos": self.slos,
             "failure_limit": self.failure_limit, "interval_s": self.interval_s, "ready_url": self.ready_url,
             "emergency": self.emergency},
        )

    async def run(self):
        async with _watching(self.prometheus, self.prometheus_url, self.ready_url if self.slos else "") as watched:
            provider, probes = watched
            async for event in self._wait(provider if self.slos else None, probes):
                yield event
                return

    async def _wait(self, provider: Any, probes: list) -> AsyncIterator[TriggerEvent]:
        """The answer, the timeout or a breach, whichever comes first; the guard runs only with SLOs to watch."""
        from airflow.sdk.execution_time.hitl import update_hitl_detail_response
        from airflow.sdk.timezone import utcnow
        from asgiref.sync import sync_to_async

        analysis = WindowAnalysis([SLOQuery(**slo) for slo in self.slos], self.failure_limit, probes=probes)
        next_check = asyncio.get_running_loop().time() + self.interval_s
        while True:
            if self.timeout_datetime and self.timeout_datetime < utcnow():
                event = await self._handle_timeout()
            else:
                event = await self._handle_response()
            if event is not None:
                event.payload["guard_checks"] = analysis.summary()
                yield event
                return
            if provider is not None and asyncio.get_running_loop().time() >= next_check:
                await analysis.observe(provider)
                next_check = asyncio.get_running_loop().time() + self.interval_s
                if outcome := analysis.outcome(window_over=False):
                    off_green = await _traffic_off_green(self.emergency, outcome[1])
                    try:  # close the approval in Airflow too: nobody can answer it any more
                        await sync_to_async(update_hitl_detail_response)(
                            ti_id=self.ti_id, chosen_options=self.defaults or [], params_input={})
                    except Exception as exc:  # noqa: BLE001 - answered at the same moment: the breach still wins
                        self.log.warning("could not close the approval as superseded: %s", exc)
                    yield TriggerEvent({"superseded": outcome[1], "guard_checks": analysis.summary(),
                                        "traffic_off_green": off_green})
                    return
            await asyncio.sleep(min(self.poke_interval, max(0.0, next_check - asyncio.get_running_loop().time()))
                                if provider is not None else self.poke_interval)


class RolloutFailed(RuntimeError):
    """The rollout cannot become ready by waiting longer."""


class RolloutTrigger(BaseTrigger):
    """Waits in the triggerer until a colour's rollout is done or the deadline passes, and yields
    ``{"ready": bool, "seen": str}``. On a cluster it reads the Deployment's status through the provider's async
    Kubernetes hook (the connection's extras resolved before deferring, as the KubernetesPodOperator does); on the
    local stack it probes the slot's readiness endpoint through the local deployer."""

    def __init__(self, *, target: str, colour: str, deadline: str, interval_s: float, blue_slot: str = "blue",
                 stack_dir: str = "", namespace: str = "", deployment: str = "",
                 connection_extras: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.target, self.colour, self.deadline, self.interval_s = target, colour, deadline, interval_s
        self.blue_slot, self.stack_dir = blue_slot, stack_dir
        self.namespace, self.deployment, self.connection_extras = namespace, deployment, connection_extras

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"target": self.target, "colour": self.colour, "deadline": self.deadline, "interval_s": self.interval_s,
             "blue_slot": self.blue_slot, "stack_dir": self.stack_dir, "namespace": self.namespace,
             "deployment": self.deployment, "connection_extras": self.connection_extras},
        )

    async def run(self):
        deadline = datetime.fromisoformat(self.deadline)
        probe = self._deployment_state if self.target == "kubernetes" else self._local_state
        while True:
            remaining = (deadline - datetime.now(timezone.utc)).total_seconds()
            try:
                ready, seen = await probe(max(0.1, min(self.interval_s, remaining)))
            except RolloutFailed as exc:
                yield TriggerEvent({"ready": False, "seen": str(exc)})
                return
            except Exception as exc:  # an unreachable API is "not ready yet" until the deadline
                ready, seen = False, f"{type(exc).__name__}: {exc}"
            if ready or remaining <= 0:
                yield TriggerEvent({"ready": ready, "seen": seen})
                return
            await asyncio.sleep(max(0.0, min(self.interval_s, remaining)))

    async def _deployment_state(self, timeout_s: float) -> tuple[bool, str]:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
        from kubernetes_asyncio import client

        from sap_llm_release.deployers.kubernetes import rollout_state, stalled_reason

        hook = AsyncKubernetesHook(conn_id=None, connection_extras=self.connection_extras or {})
        async with hook.get_conn() as api:
            live = await client.AppsV1Api(api).read_namespaced_deployment(
                self.deployment, self.namespace, _request_timeout=timeout_s)
            deployment = api.sanitize_for_serialization(live)
        done, seen = rollout_state(deployment)
        where = f"deployment {self.namespace}/{self.deployment}"
        if stalled := stalled_reason(deployment):
            raise RolloutFailed(f"{where} rollout stalled: {seen}; {stalled}")
        return done, f"{where}: {seen}"

    async def _local_state(self, timeout_s: float) -> tuple[bool, str]:
        from pathlib import Path

        from sap_llm_release.targets import local_target

        deployer = local_target(Path(self.stack_dir), self.blue_slot).deployer
        if deployer.running_version(self.colour) is None:
            raise RolloutFailed(f"local {self.colour} is not running: {deployer.logs(self.colour)[-500:]}")
        return await asyncio.to_thread(deployer.wait_ready, self.colour, timeout_s)


class AlertsClearTrigger(BaseTrigger):
    """Waits in the triggerer until no alert ``alerts`` selects fires, asking every ``interval_s``, at most until
    ``deadline`` (absolute, so a trigger run again after a triggerer restart waits no longer); yields the outcome
    of :func:`sap_llm_release.analysis.alerts.wait_until_clear` with its tally."""

    def __init__(self, *, prometheus: dict[str, Any], alerts: str, interval_s: float, started: str,
                 deadline: str) -> None:
        super().__init__()
        self.prometheus, self.alerts, self.interval_s = prometheus, alerts, interval_s
        self.started, self.deadline = started, deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"prometheus": self.prometheus, "alerts": self.alerts, "interval_s": self.interval_s,
             "started": self.started, "deadline": self.deadline},
        )

    async def run(self):
        remaining = (datetime.fromisoformat(self.deadline) - datetime.now(timezone.utc)).total_seconds()
        yield TriggerEvent(await self._outcome(wait_s=max(0.0, remaining)))

    def ask_now(self) -> dict[str, Any]:
        """One check, now, in the calling process (a worker, not the triggerer): the event :meth:`run` yields when
        nothing fires at its first check; a failed one, naming what fires, otherwise."""
        return asyncio.run(self._outcome(wait_s=0.0))

    async def _outcome(self, wait_s: float) -> dict[str, Any]:
        from dataclasses import asdict

        from sap_llm_release.analysis.alerts import wait_until_clear
        from sap_llm_release.analysis.prometheus import AsyncPrometheusProvider, PrometheusAccess

        async with AsyncPrometheusProvider(PrometheusAccess(**self.prometheus)) as provider:
            outcome = await wait_until_clear(provider, self.alerts, wait_s=wait_s, interval_s=self.interval_s)
        return {"status": "passed" if outcome.passed else "failed", "reason": outcome.reason,
                "firing": outcome.firing, "checks": [asdict(outcome.tally)],
                "window_start": self.started, "window_end": datetime.now(timezone.utc).isoformat()}
