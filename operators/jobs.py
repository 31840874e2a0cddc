"""The operator that runs an inference job (validator or load-test image) and records its result: a release's
jobs here, an audit's in operators/audits.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from operators.base import ReleaseOperator
from operators.pods import base_container_end, job_pod_operator
from operators.runtime import KUBERNETES_CONN_ID, ReleaseRun
from sap_llm_release.jobs.base import JobError, JobOutcome
from sap_llm_release.jobs.spec import InferenceJob
from sap_llm_release.targets import Target, TargetError

POD_RUNNER = "kubernetes_pod"


@dataclass(frozen=True)
class JobHost:
    """What runs a job and keeps its outcome: the job as the spec names it, its placeholders' values, the target it
    runs on, and where its outcome is recorded (a release's record, or an audit run's)."""

    job: InferenceJob
    variables: dict[str, str]
    target: Target
    record: Callable[[JobOutcome], Any]


class InferenceJobOperator(ReleaseOperator):
    """Run one of the spec's jobs on the target: a local process on the local target, a KubernetesPodOperator pod
    (deferred while it runs) on a cluster. Record the outcome (result JSON, digest, exit status) in the ledger
    whatever it is. A job that ran to the end succeeds even when its own checks failed: the gates that read it
    record those failures with their numbers. A job that left no result fails, with its log's tail."""

    ui_color = "#e8daef"

    def __init__(self, *, job: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job

    def host(self, context: Any) -> JobHost:
        """The release's job, with the release's variables, on its target, recorded in its record."""
        run = ReleaseRun(self.spec_path, context)
        return JobHost(run.spec.job(self.job), run.job_variables(), run.target,
                       lambda outcome: run.ledger.record_job_result(run.release_id, outcome, run.writer))

    def execute(self, context: Any) -> dict[str, Any]:
        host = self.host(context)
        job, args = host.job, host.job.render_args(host.variables)
        if host.target.pods is not None:
            # defers; the pod's trigger resumes this task in trigger_reentry
            return job_pod_operator(job, args, host.target.pods, task_id=self.task_id,
                                    conn_id=KUBERNETES_CONN_ID).execute(context)
        runner = host.target.job_runner
        if runner is None:
            raise TargetError(f"target {host.target.name} runs no inference jobs")
        outcome = runner.run(job.name, job.image, job.command, args, job.timeout.total_seconds(), job.gpus)
        return self._record(host, outcome)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """The pod ended: read its result back (through the same KubernetesPodOperator) and record it."""
        host = self.host(context)
        job = host.job
        pod = job_pod_operator(job, job.render_args(host.variables), host.target.pods, task_id=self.task_id,
                               conn_id=KUBERNETES_CONN_ID)
        started = context["ti"].start_date
        try:
            result, failure = pod.trigger_reentry(context, event), None
        except Exception as exc:  # the pod failed, timed out or vanished
            # on failure the operator still pushed what the xcom sidecar read (a result written before exit 1)
            result, failure = context["ti"].xcom_pull(task_ids=self.task_id, key="return_value"), exc
        exit_code, message = base_container_end(pod.pod)
        detail = f"pod {event.get('name')}: {event.get('status')}, exit {exit_code}"
        if failure is not None:
            detail += f"; {message[-1500:] or str(failure).splitlines()[0][:500]}"
        outcome = JobOutcome(
            job=job.name, image=pod.image, command=job.command, runner=POD_RUNNER,
            exit_code=exit_code, detail=detail,
            result_text=None if result is None else json.dumps(result),
            started_at=started.isoformat() if started else "", finished_at=datetime.now(timezone.utc).isoformat(),
        )
        return self._record(host, outcome)

    def _record(self, host: JobHost, outcome: JobOutcome) -> dict[str, Any]:
        host.record(outcome)
        if not outcome.usable:
            raise JobError(f"job {outcome.job} left no usable result: {outcome.detail}")
        self.log.info("job %s: exit %s, passed=%s (%s)", outcome.job, outcome.exit_code,
                      outcome.result.get("passed"), outcome.detail)
        return {"job": outcome.job, "exit_code": outcome.exit_code, "passed": outcome.result.get("passed")}
