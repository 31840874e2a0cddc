"""The operator that runs an inference job (validator or load-test image) and records its result."""

from __future__ import annotations

from typing import Any

from operators.base import ReleaseOperator
from operators.runtime import ReleaseRun
from sap_llm_release.jobs.base import JobError
from sap_llm_release.targets import TargetError


class InferenceJobOperator(ReleaseOperator):
    """Run one of the spec's jobs on the target's job runner; record the outcome (result JSON, digest, exit
    status) in the ledger whatever it is. A job that ran to the end succeeds even when its own checks failed:
    the gates that read it record those failures with their numbers. A job that left no result fails."""

    ui_color = "#e8daef"

    def __init__(self, *, job: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job = job

    def execute(self, context: Any) -> dict[str, Any]:
        run = ReleaseRun(self.spec_path, context)
        job = run.spec.job(self.job)
        runner = run.target.job_runner
        if runner is None:
            raise TargetError(f"target {run.target.name} runs no inference jobs")
        args = job.render_args(run.job_variables())
        outcome = runner.run(job.name, job.image, job.command, args, job.timeout.total_seconds(), job.gpus)
        run.ledger.record_job_result(run.release_id, outcome, run.writer)
        if not outcome.usable:
            raise JobError(f"job {job.name} left no usable result: {outcome.detail}")
        self.log.info("job %s: exit %s, passed=%s (%s)", job.name, outcome.exit_code, outcome.result.get("passed"),
                      outcome.detail)
        return {"job": job.name, "exit_code": outcome.exit_code, "passed": outcome.result.get("passed")}
