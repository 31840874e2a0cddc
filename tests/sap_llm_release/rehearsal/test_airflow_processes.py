"""Airflow's processes as the rehearsals run them: each component in its own process group and log, one killed and
started again while the others run on, all stopped at the end. An ``airflow`` stand-in script is the program here
(the real components run in tests/dags/test_release_on_celery.py). And the rehearsals' release manager: signed Slack
clicks on the approvals that wait, each once, after reading it."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from sap_llm_release.approvals.slack_callback import verify
from sap_llm_release.polling import poll_until
from sap_llm_release.rehearsal.airflow_processes import AirflowProcesses, SlackButtons
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


@pytest.fixture
def interactions_endpoint():
    """A stand-in for the approvals plugin: records each click's arrival time and body, checks its signature with
    the plugin's own check, answers as the plugin does."""

    clicks: list[tuple[float, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            verify(body, dict(self.headers), "signing-secret")
            clicks.append((time.monotonic(), json.loads(parse_qs(body.decode())["payload"][0])))
            reply = json.dumps({"text": "Approved"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", clicks
    server.shutdown()


def test_the_release_manager_clicks_each_waiting_approval_once_after_reading_it(interactions_endpoint):

    url, clicks = interactions_endpoint
    buttons = SlackButtons(url, "signing-secret", user="U0RELMGR01", team="T0SAPLLM01", reading_s=0.3)
    states = {"traffic.approve_first_shift_go": "deferred", "traffic.approve_full_traffic_go": "scheduled"}
    answered: set[str] = set()
    seen = time.monotonic()
    answers = buttons.approve_waiting("sap_llm_release:r1", states, ["first_shift_go", "full_traffic_go"], answered)
    assert answers == {"first_shift_go": "Approved"} and answered == {"first_shift_go"}
    assert buttons.approve_waiting("sap_llm_release:r1", states, ["first_shift_go", "full_traffic_go"], answered) == {}
    [(clicked_at, payload)] = clicks
    assert clicked_at - seen >= 0.3
    assert payload["user"]["id"] == "U0RELMGR01" and payload["team"]["id"] == "T0SAPLLM01"
    assert json.loads(payload["actions"][0]["value"]) == {"release_id": "sap_llm_release:r1",
                                                          "approval": "first_shift_go"}
