"""Airflow's processes as the rehearsals run them: each component in its own process group and log, one killed and
started again while the others run on, all stopped at the end. An ``airflow`` stand-in script is the program here
(the real components run in tests/dags/test_release_on_celery.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.airflow_processes import AirflowProcesses
from sap_llm_release.rehearsal.processes import alive

# a component that logs its command, starts a child (as Airflow's components do) and runs until stopped
FAKE_AIRFLOW = """#!/bin/sh
echo "started $*"
sleep 300 &
echo "child $!"
wait
"""


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie nobody reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def child_of(log: Path) -> int:
    assert poll_until(lambda: "child " in log.read_text(), bool, timeout_s=10, interval_s=0.05)
    return int(log.read_text().split("child ")[-1].split()[0])


@pytest.fixture
def processes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "airflow").write_text(FAKE_AIRFLOW)
    (bin_dir / "airflow").chmod(stat.S_IRWXU)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    started = AirflowProcesses(tmp_path, env, {"scheduler": "scheduler", "worker": "celery worker"})
    yield started
    started.stop()


def test_a_killed_component_takes_its_children_and_starts_again_while_the_others_run(processes, tmp_path):
    processes.start()
    scheduler, worker = processes.processes["scheduler"].pid, processes.processes["worker"].pid
    schedulers_child = child_of(tmp_path / "scheduler.log")

    processes.kill("scheduler")

    assert not alive(scheduler)
    assert poll_until(lambda: gone(schedulers_child), bool, timeout_s=5, interval_s=0.01)  # the whole group went
    assert alive(worker) and processes.exited() == []
    processes.start("scheduler")
    log = tmp_path / "scheduler.log"  # appended to, not replaced
    assert poll_until(lambda: log.read_text().count("started scheduler"), lambda n: n == 2, timeout_s=10,
                      interval_s=0.05)
    processes.stop()
    assert processes.processes == {} and not alive(worker)
    assert "started celery worker" in (tmp_path / "worker.log").read_text()


def test_a_component_that_exits_is_named(processes):
    processes.commands["dag-processor"] = "exit-at-once"
    (processes.home / "bin" / "airflow").write_text("#!/bin/sh\n[ \"$1\" = exit-at-once ] && exit 1\nsleep 300\n")
    processes.start("dag-processor")
    processes.processes["dag-processor"].wait(timeout=10)
    assert processes.exited() == ["dag-processor"]


def test_a_failed_migration_names_its_log(processes):
    (processes.home / "bin" / "airflow").write_text("#!/bin/sh\necho 'cannot reach the database' >&2\nexit 1\n")
    with pytest.raises(RuntimeError, match="migrate.log"):
        processes.migrate()
    assert "cannot reach the database" in (processes.home / "migrate.log").read_text()
