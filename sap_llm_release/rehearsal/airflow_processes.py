"""Airflow run for real in a rehearsal: ``airflow standalone`` (the embedded default), or Airflow's components as
separate processes (api-server, scheduler, dag-processor, triggerer, Celery workers) as operators/deployment.py
describes them; a client of its REST API; and Slack's button clicks, signed, posted to the approvals plugin.

Each component runs in its own process group with its own log, so a restart-safety test can SIGKILL one (a scheduler
mid-window, a worker mid-task) and start it again while the others run on.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx

from sap_llm_release.polling import poll_until

PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # Airflow's simple auth manager writes it


def _stop(process: subprocess.Popen, graceful: signal.Signals) -> None:
    """``graceful`` to the process group, then SIGTERM, then SIGKILL, and reap it."""
    for sig, grace_s in ((graceful, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    with contextlib.suppress(ProcessLookupError):  # members of the group that outlived its leader
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


class AirflowProcesses:
    """Airflow's processes: ``commands`` maps a name to the ``airflow`` subcommand that starts it, each in its own
    process group, logging to ``home/<name>.log``; ``env`` is every process's environment."""

    def __init__(self, home: Path, env: dict[str, str], commands: dict[str, str]) -> None:
        self.home, self.env, self.commands = home, env, commands
        self.airflow = str(Path(env["PATH"].split(os.pathsep)[0]) / "airflow")
        self.processes: dict[str, subprocess.Popen] = {}

    def migrate(self) -> None:
        """``airflow db migrate``: the components, unlike standalone, expect a migrated database."""
        with (self.home / "migrate.log").open("ab") as log:
            done = subprocess.run([self.airflow, "db", "migrate"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed; see {self.home / 'migrate.log'}")

    def start(self, *names: str) -> None:
        """Start the named components (all of them when none is named)."""
        for name in names or tuple(self.commands):
            log = self.log(name).open("ab")
            self.processes[name] = subprocess.Popen(
                [self.airflow, *self.commands[name].split()], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            log.close()

    def log(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def exited(self) -> list[str]:
        """The components that were started and have exited since."""
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group, as a node dying or the OOM killer would, and reap it."""
        process = self.processes.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self) -> None:
        """Stop every component the way its own shutdown expects (SIGINT for standalone, SIGTERM for the rest)."""
        for name in reversed(list(self.processes)):
            _stop(self.processes.pop(name), signal.SIGINT if self.commands[name] == "standalone" else signal.SIGTERM)


class AirflowClient:
    """Airflow's REST API as the admin user of the simple auth manager (its password read from Airflow's home)."""

    def __init__(self, url: str, home: Path) -> None:
        self.url, self.home = url, home
        self.http = httpx.Client(base_url=url, timeout=30)

    def wait_ready(self, dag_ids: tuple[str, ...], timeout_s: float, gone: Callable[[], list[str]]) -> None:
        """Wait for the API, log in, wait for each DAG to be parsed and unpause it; ``gone()`` naming an exited
        process ends the wait at once."""
        self._wait(lambda: self.http.get("/api/v2/monitor/health").status_code == 200, timeout_s, "Airflow API", gone)
        self.log_in()
        for dag_id in dag_ids:
            self._wait(lambda dag_id=dag_id: self.http.get(f"/api/v2/dags/{dag_id}").status_code == 200, timeout_s,
                       f"DAG {dag_id}", gone)
            self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def log_in(self) -> None:
        password = json.loads((self.home / PASSWORDS_FILE).read_text())["admin"]
        token = self.http.post("/auth/token", json={"username": "admin", "password": password})
        token.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def trigger(self, dag_id: str, conf: dict) -> str:
        response = self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def run_count(self, dag_id: str) -> int:
        """How many runs of ``dag_id`` exist."""
        response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1})
        response.raise_for_status()
        return response.json()["total_entries"]

    def newest_run(self, dag_id: str) -> dict:
        """The most recently queued run of ``dag_id`` (its ``dag_run_id``, ``conf``, ``state`` ...)."""
        response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1, "order_by": "-run_after"})
        response.raise_for_status()
        return response.json()["dag_runs"][0]

    def run_state(self, dag_id: str, run_id: str) -> str:
        response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return response.json()["state"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """Every task instance's state by task id (the API pages at 100)."""
        states: dict[str, str | None] = {}
        while True:
            response = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                                     params={"limit": 100, "offset": len(states)})
            response.raise_for_status()
            page = response.json()
            states.update({ti["task_id"]: ti["state"] for ti in page["task_instances"]})
            if not page["task_instances"] or len(states) >= page["total_entries"]:
                return states

    def _wait(self, ready: Callable[[], bool], timeout_s: float, what: str, gone: Callable[[], list[str]]) -> None:
        def answered() -> bool:
            if exited := gone():
                raise RuntimeError(f"Airflow's {', '.join(exited)} exited; see its log in {self.home}")
            try:
                return bool(ready())
            except httpx.HTTPError:
                return False

        if not poll_until(answered, bool, timeout_s=timeout_s, interval_s=1.0):
            raise RuntimeError(f"{what} not ready within {timeout_s:.0f}s; see the logs in {self.home}")


class SlackButtons:
    """Clicks a release's buttons as Slack would: a signed ``block_actions`` request to the approvals plugin on
    Airflow's API server, as one Slack user of one workspace, ``reading_s`` after the request came (the HITL record
    settles in the triggerer within a second; a person reads the evidence first)."""

    def __init__(self, airflow_url: str, secret: str, user: str, team: str, reading_s: float = 1.0) -> None:
        self.airflow_url, self.secret, self.user, self.team = airflow_url, secret, user, team
        self.reading_s = reading_s

    def click(self, release_id: str, approval: str, action: str = "approve") -> str:
        """Post the click; return the plugin's answer text."""
        value = json.dumps({"release_id": release_id, "approval": approval})
        payload = {"type": "block_actions", "user": {"id": self.user, "username": "release-manager"},
                   "team": {"id": self.team}, "actions": [{"action_id": action, "value": value}],
                   "container": {"channel_id": "C0RELEASES", "message_ts": "0"}}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(self.secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
        reply = httpx.post(f"{self.airflow_url}/sap-llm-slack/interactions", content=body, timeout=30, headers={
            "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={signature}",
            "Content-Type": "application/x-www-form-urlencoded"})
        reply.raise_for_status()
        return reply.json()["text"]

    def approve_waiting(self, release_id: str, states: dict[str, str | None], approvals: list[str],
                        answered: set[str]) -> dict[str, str]:
        """Click Approve, once each, on the approvals whose task waits (deferred) in ``states`` (task id -> state),
        ``reading_s`` after seeing it wait; add them to ``answered`` and return the plugin's answer by approval."""
        answers = {}
        for name in approvals:
            task = next((t for t in states if t.endswith(f".approve_{name}")), None)
            if name in answered or task is None or states[task] != "deferred":
                continue
            time.sleep(self.reading_s)
            answers[name] = self.click(release_id, name)
            answered.add(name)
        return answers
