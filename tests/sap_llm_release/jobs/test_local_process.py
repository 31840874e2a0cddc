"""The local-process job runner: the image's command line with --result, the outcome and its log tail."""

from __future__ import annotations

import sys

import pytest

from sap_llm_release.jobs.base import JobError
from sap_llm_release.jobs.local_process import LocalProcessJobRunner

ENTRYPOINT = '''
import json, sys, time
args = sys.argv[1:]
result = args[args.index("--result") + 1]
mode = args[2]
if mode == "sleep":
    time.sleep(30)
if mode == "crash":
    print("Traceback: model file not found", flush=True)
    sys.exit(2)
if mode == "garbage":
    open(result, "w").write("not json")
    sys.exit(0)
json.dump({"passed": mode == "pass", "args": args, "cwd_marker": open("marker").read()}, open(result, "w"))
sys.exit(0 if mode == "pass" else 1)
'''


@pytest.fixture
def runner(tmp_path):
    script = tmp_path / "entrypoint.py"
    script.write_text(ENTRYPOINT)
    (tmp_path / "marker").write_text("project dir")
    return LocalProcessJobRunner(commands={"validator": [sys.executable, str(script)]}, work_dir=tmp_path / "jobs",
                                 cwd=tmp_path, env={"JOB_ENV_SET": "1"})


def run(runner, mode: str, timeout_s: float = 20):
    return runner.run("model_evaluation", "validator", "evaluate", ["--mode", mode], timeout_s, 0)


def test_passing_job_writes_its_result_and_runs_in_the_project_dir(runner, tmp_path):
    outcome = run(runner, "pass")
    assert (outcome.exit_code, outcome.usable, outcome.runner) == (0, True, "local_process")
    assert outcome.result["args"] == ["evaluate", "--mode", "pass", "--result",
                                      str(tmp_path / "jobs" / "model_evaluation.json")]
    assert outcome.result["cwd_marker"] == "project dir"
    assert "exit 0" in outcome.detail and "log:" not in outcome.detail


def test_failing_checks_are_still_a_usable_result(runner):
    outcome = run(runner, "fail")
    assert (outcome.exit_code, outcome.usable, outcome.result["passed"]) == (1, True, False)


def test_crash_leaves_no_result_and_the_log_tail(runner):
    outcome = run(runner, "crash")
    assert (outcome.exit_code, outcome.usable, outcome.result_text) == (2, False, None)
    assert "Traceback: model file not found" in outcome.detail


def test_garbage_result_is_kept_as_written_but_not_usable(runner):
    outcome = run(runner, "garbage")
    assert (outcome.result_text, outcome.result, outcome.usable) == ("not json", None, False)


def test_timeout_is_reported(runner):
    outcome = run(runner, "sleep", timeout_s=1)
    assert outcome.exit_code is None and not outcome.usable
    assert "timeout after 1s" in outcome.detail


def test_a_stale_result_of_an_earlier_run_is_never_read(runner, tmp_path):
    run(runner, "pass")
    assert run(runner, "crash").result is None


def test_unknown_image_is_refused(runner):
    with pytest.raises(JobError, match="no local command for image 'loadtest'"):
        runner.run("load_test", "loadtest", "load", [], 5, 0)
