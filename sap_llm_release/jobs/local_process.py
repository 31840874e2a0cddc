"""Jobs as local processes: each image's entrypoint from its own virtual environment on this machine (the embedded
default, where there is no cluster and no GPU)."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from sap_llm_release.jobs.base import JobError, JobOutcome


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class LocalProcessJobRunner:
    """``commands`` maps an image to the command line of its entrypoint; results and logs go to ``work_dir``."""

    name = "local_process"

    def __init__(self, *, commands: dict[str, list[str]], work_dir: Path, cwd: Path,
                 env: dict[str, str] | None = None) -> None:
        self.commands, self.work_dir, self.cwd, self.env = commands, Path(work_dir), Path(cwd), env or {}

    def run(self, job: str, image: str, command: str, args: list[str], timeout_s: float, gpus: int) -> JobOutcome:
        if image not in self.commands:
            raise JobError(f"job {job}: no local command for image {image!r}; known: {sorted(self.commands)}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        result_path, log_path = self.work_dir / f"{job}.json", self.work_dir / f"{job}.log"
        result_path.unlink(missing_ok=True)
        argv = [*self.commands[image], command, *args, "--result", str(result_path)]
        started = _now()
        with log_path.open("wb") as log:
            try:
                completed = subprocess.run(argv, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, timeout=timeout_s,
                                           env={**os.environ, **self.env})
                exit_code = completed.returncode
            except subprocess.TimeoutExpired:
                exit_code = None
            except OSError as exc:
                raise JobError(f"job {job}: cannot start {argv}: {exc}") from exc
        result_text = result_path.read_text() if result_path.exists() else None
        detail = f"{' '.join(argv)} -> exit {exit_code if exit_code is not None else f'timeout after {timeout_s}s'}"
        if exit_code not in (0, 1) or result_text is None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            detail += "; log: " + " | ".join(tail)
        return JobOutcome(job=job, image=image, command=command, runner=self.name, exit_code=exit_code,
                          result_text=result_text, detail=detail[:4000], started_at=started, finished_at=_now())
