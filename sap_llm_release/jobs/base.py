"""The job-runner interface: run an inference image's entrypoint with arguments and read back its result JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol


class JobError(RuntimeError):
    """A job could not be started, or ended without a usable result."""


@dataclass(frozen=True)
class JobOutcome:
    """What one run of a job left: its exit status, the result JSON as written (text and parsed) and a detail
    line (the log's tail when something went wrong)."""

    job: str
    image: str
    command: str
    runner: str
    exit_code: int | None
    result_text: str | None
    detail: str
    started_at: str
    finished_at: str

    @cached_property
    def result(self) -> dict[str, Any] | None:
        if self.result_text is None:
            return None
        try:
            parsed = json.loads(self.result_text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def usable(self) -> bool:
        """The entrypoint ran to the end (0: checks passed, 1: a check failed) and wrote a JSON object."""
        return self.exit_code in (0, 1) and self.result is not None


class JobRunner(Protocol):
    name: str

    def run(self, job: str, image: str, command: str, args: list[str], timeout_s: float, gpus: int) -> JobOutcome:
        """Run ``image``'s ``command`` with ``args`` (the runner adds ``--result``) and collect the outcome."""
