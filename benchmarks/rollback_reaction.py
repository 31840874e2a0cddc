"""Seconds from errors injected into green to the breach decision, to the router write that takes green's traffic
off, and to the last request green answered (read at nginx).

    .venv/bin/python benchmarks/rollback_reaction.py [--runs 3] [--step 20]      # under dag.test()
    .venv/bin/python benchmarks/rollback_reaction.py --airflow standalone        # the real scheduler and triggerer
    .venv/bin/python benchmarks/rollback_reaction.py --airflow standalone --busy 50  # with 50 other runs in flight

Runs the release DAG (rehearsal profile: 1 s scrape, 2 s analysis interval, failure limit 2) against its own live
local stack, injects a 50 % error rate into green when the router reaches the step, and reads the ledger (the
``breach_decided`` event, the ``breach`` traffic change written where the breach was decided; the rollback's own
change where none was) and nginx's access log. Under ``dag.test()`` the DAG runs in this process; with ``--airflow
standalone`` it runs through ``airflow standalone`` (scheduler, triggerer, LocalExecutor, its metadata in a
throwaway PostgreSQL), triggered through the REST API; ``--busy N`` first starts N runs of a neighbour DAG that keep
the scheduler, the executor's four slots and the triggerer busy (each run: forty rounds of a 5 s deferred wait and a
task holding a slot for a second). Sets up what it needs: an Airflow home, the ledger, the stack, the Slack signing
connection, and the release manager's Slack clicks that answer the release's approvals (as the test suite's
rehearsals do). Each run starts once the previous run's critical alert has cleared, as a release would. With
``--busy`` the release manager answers 15 s after an approval waits and the rehearsal's windows are five times longer
(``--reading-s``, ``--windows-x``): a wait that ends within a busy scheduler's loop meets Airflow 3.3's stale
defer-exit event (apache/airflow#72716) and can lose both tries.
Goal (issue 18): median at most 3 s from injection to the last green answer under dag.test, 5 s through the real
scheduler, busy or not. (Flagger needs analysis interval x threshold, 60 s x 1 at its defaults, for the same
decision.)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
atexit.register(shutil.rmtree, HOME, ignore_errors=True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_CONN_SAP_LLM_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(HOME / "ledger.db")}),
    }
)
sys.path.insert(0, str(ROOT))

from operators import deployment  # noqa: E402
from sap_llm_release.rehearsal.airflow_processes import AirflowClient, AirflowProcesses, SlackButtons  # noqa: E402
from sap_llm_release.rehearsal.local_postgres import temporary_postgres  # noqa: E402
from sap_llm_release.rehearsal.processes import free_port  # noqa: E402
from sap_llm_release.spec import load_spec  # noqa: E402
from sap_llm_release.timestamps import recorded_time  # noqa: E402
from tests.support.approvals import RELEASE_MANAGER, SIGNING_SECRET, SLACK_TEAM  # noqa: E402
from tests.support.celery_airflow import DAG_ID, RunningAirflow  # noqa: E402
from tests.support.runs import ledger, release_conf, release_id, run_release  # noqa: E402
from tests.support.stack import LiveStack  # noqa: E402

os.environ["AIRFLOW_CONN_SAP_LLM_SLACK_SIGNING"] = json.dumps({"conn_type": "generic", "password": SIGNING_SECRET})


def last_green_answer(access_log: Path, green_address: str, since: float) -> float | None:
    """Timestamp of the last request nginx sent to green after ``since``."""
    last = None
    for line in access_log.read_text().splitlines():
        stamp, upstream = line.split(" ", 2)[:2]
        if float(stamp) >= since and green_address in upstream:
            last = float(stamp)
    return last


class NoInjection(RuntimeError):
    """The release ended before the router reached the step: nothing was measured."""


def why_no_shift(stack: LiveStack, dag_run, states: dict[str, str]) -> str:
    """The failed tasks, the ledger's failed gates and windows, and the alerts firing now."""
    record = ledger().release_record(release_id(dag_run))
    failed = sorted(task for task, state in states.items() if state == "failed")
    gates = [f"{g['gate']}: measured {g['measured_value']}, {g['threshold']}, {g['detail']}"
             for g in record["gate_results"] if g["verdict"] == "failed"]
    windows = [f"{w['step']}: {w['reason']}" for w in record["slo_windows"] if w["verdict"] == "failed"]
    firing = httpx.get(f"{stack.prometheus_url}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'},
                       timeout=5).json()["data"]["result"]
    return (f"failed: {', '.join(failed) or 'none'}; failed gates: {'; '.join(gates) or 'none recorded'}; "
            f"failed windows: {'; '.join(windows) or 'none recorded'}; firing now: "
            f"{', '.join(sorted(alert['metric']['alertname'] for alert in firing)) or 'none'}"
            + "".join(_log_tail(dag_run, task) for task in failed))


def _log_tail(dag_run, task_id: str, lines: int = 15) -> str:
    """The end of a failed task's last log under the real scheduler (``airflow standalone`` writes them in its
    home, which the benchmark removes when it exits); nothing under dag.test(), which logged to this terminal."""
    logs = sorted(path for path in (HOME / "standalone" / "logs").glob(
        f"dag_id={dag_run.dag_id}/run_id={dag_run.run_id}/task_id={task_id}/attempt=*.log")
                  if re.fullmatch(r"attempt=\d+\.log", path.name))  # not the trigger's logs beside them
    if not logs:
        return ""
    return f"\n--- {logs[-1]} (last {lines} lines):\n" + "\n".join(logs[-1].read_text().splitlines()[-lines:])


@dataclass(frozen=True)
class Reaction:
    """Seconds after the injection."""

    decided: float
    written: float
    last_green: float


def reaction(stack: LiveStack, dag_run, injected: float) -> Reaction:
    """When the breach was decided and the router written (the ledger), and when green last answered (nginx)."""
    record = ledger().release_record(release_id(dag_run))
    switch = next(change for change in reversed(record["traffic_changes"]) if change["green_after"] == 0)
    decided = next((event["recorded_at"] for event in record["release_events"] if event["event"] == "breach_decided"),
                   record["rollbacks"][0]["started_at"])
    green = f"127.0.0.1:{stack.info['ports']['green']}"
    last = last_green_answer(stack.dir / "access.log", green, injected) or injected
    return Reaction(recorded_time(decided).timestamp() - injected,
                    recorded_time(switch["changed_at"]).timestamp() - injected, last - injected)


BUSY_DAG_ID = "busy_neighbour"
BUSY_DAG = f'''"""A neighbour that keeps the scheduler busy beside a release (benchmarks/rollback_reaction.py
--busy): each run waits 5 s deferred in the triggerer, then holds one of the executor's slots for a second, forty
times over."""

import time

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import DAG, task

# absolute weight 1: the release's tasks (weighted by what follows them) take a free slot first, as an operator would
# rank a release above batch work; the neighbours still hold the slots, the scheduler's loop and the triggerer
with DAG("{BUSY_DAG_ID}", schedule=None, max_active_runs=100, catchup=False,
         default_args={{"priority_weight": 1, "weight_rule": "absolute"}}):
    previous = None
    for round_ in range(40):
        wait = DateTimeSensorAsync(
            task_id=f"wait_{{round_}}",
            target_time="{{{{ (macros.datetime.utcnow() + macros.timedelta(seconds=5)).isoformat() }}}}")

        @task(task_id=f"work_{{round_}}")
        def work() -> None:
            time.sleep(1)  # holds a slot; each task's own process start costs the machine a second or two of CPU

        done = work()
        if previous is not None:
            previous >> wait
        wait >> done
        previous = done
'''


@contextlib.contextmanager
def standalone_airflow(stack: LiveStack, busy: int, reading_s: float) -> Iterator[RunningAirflow]:
    """``airflow standalone`` (LocalExecutor) on a throwaway PostgreSQL with this process's connections, the
    release DAG unpaused; with ``busy``, that many runs of the neighbour DAG started and running. The release
    manager clicks an approval ``reading_s`` after it waits."""
    home, port = HOME / "standalone", free_port()
    home.mkdir()
    with temporary_postgres("airflow", driver="psycopg2") as metadata_url:
        if metadata_url is None:
            raise SystemExit("PostgreSQL is not installed (make setup installs Debian's postgresql)")
        env = deployment.local_environment(home, "LocalExecutor", metadata_url, port)
        dag_ids: tuple[str, ...] = (DAG_ID,)
        if busy:
            dags = home / "dags"
            dags.mkdir()
            (dags / "release_sap_llm.py").symlink_to(ROOT / "dags" / "release_sap_llm.py")
            (dags / f"{BUSY_DAG_ID}.py").write_text(BUSY_DAG)
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
            dag_ids += (BUSY_DAG_ID,)
        processes = AirflowProcesses(home, env, {"standalone": "standalone"})
        processes.start()
        try:
            api = AirflowClient(f"http://127.0.0.1:{port}", home)
            api.wait_ready(dag_ids, 180, processes.exited)
            neighbours = [api.trigger(BUSY_DAG_ID, {}) for _ in range(busy)]
            while busy and sum(api.run_state(BUSY_DAG_ID, run) == "running" for run in neighbours) < busy:
                time.sleep(2)
            buttons = SlackButtons(api.url, SIGNING_SECRET, RELEASE_MANAGER, SLACK_TEAM, reading_s=reading_s)
            yield RunningAirflow(processes, api, buttons, metadata_url)
        finally:
            processes.stop()


def release_through(airflow: RunningAirflow | None) -> tuple[object, dict[str, str]]:
    """Run one release under dag.test() (``airflow`` None) or through the running Airflow; its run and its tasks'
    states."""
    if airflow is None:
        return run_release(release_conf())
    run_id = airflow.api.trigger(DAG_ID, release_conf())
    approvals = [approval.name for approval in load_spec(os.environ.get(
        "SAP_LLM_RELEASE_SPEC", ROOT / "specs" / "sap_llm.yaml")).approvals]
    state = airflow.follow(run_id, approvals, timeout_s=900)
    return SimpleNamespace(dag_id=DAG_ID, run_id=run_id, state=state), airflow.api.task_states(DAG_ID, run_id)


def one_run(stack: LiveStack, step: int, airflow: RunningAirflow | None) -> Reaction:
    stack.reset()
    stack.forget_alerts()
    injected: dict[str, float] = {}

    def inject() -> None:
        stack.set_faults("green", error_rate=0.5)
        injected["at"] = time.time()

    stack.when_green_weight(step, inject, timeout_s=900)
    dag_run, states = release_through(airflow)
    if "at" not in injected:
        raise NoInjection(f"the release never sent {step} % to green ({why_no_shift(stack, dag_run, states)})")
    if (rollback := states.get("rollback.rollback_to_blue")) != "success":
        raise RuntimeError(f"no rollback after the injection: rollback_to_blue is {rollback}")
    return reaction(stack, dag_run, injected["at"])


def longer_windows(spec: Path, times: float) -> Path:
    """A copy of ``spec`` whose rehearsal profile's traffic windows are ``times`` longer (its ``window_scale``)."""
    data = yaml.safe_load(spec.read_text())
    data["profiles"]["rehearsal"]["window_scale"] *= times
    copy = HOME / "spec.yaml"
    copy.write_text(yaml.safe_dump(data, sort_keys=False))
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=int, default=20, choices=(5, 20, 50, 100))
    # below Linux's ephemeral port range (32768-60999), like the test suite's stacks
    parser.add_argument("--base-port", type=int, default=25080)
    parser.add_argument("--spec", type=Path, help="release with this spec instead of the project's (the suite's "
                        "smallest size: the traffic rehearsals' spec, whose few gates before the shift change "
                        "nothing after it)")
    parser.add_argument("--airflow", choices=("dag-test", "standalone"), default="dag-test",
                        help="dag-test: in this process; standalone: the real scheduler, triggerer and LocalExecutor")
    parser.add_argument("--busy", type=int, default=0, help="runs of a neighbour DAG in flight (standalone only)")
    parser.add_argument("--reading-s", type=float, help="seconds the release manager takes to answer an approval "
                        "through the real scheduler (default 1; 15 with --busy: a click within seconds of the request "
                        "meets Airflow 3.3.2's scheduler failing the resumed approval on the stale executor event of "
                        "its own defer, apache/airflow#72716, when the scheduler's loop is slow)")
    parser.add_argument("--windows-x", type=float, help="the rehearsal's windows this many times longer (default 1; "
                        "5 with --busy: a 4 s window is shorter than a busy scheduler's loop, and a window that "
                        "ends within it meets the same stale executor event, both tries; 30 min -> 20 s)")
    args = parser.parse_args()
    if args.reading_s is None:
        args.reading_s = 15.0 if args.busy else 1.0
    if args.windows_x is None:
        args.windows_x = 5.0 if args.busy else 1.0
    if args.busy and args.airflow != "standalone":
        parser.error("--busy: only with --airflow standalone (dag.test() has no scheduler to keep busy)")
    if args.spec or args.windows_x != 1:
        spec = args.spec or Path(os.environ.get("SAP_LLM_RELEASE_SPEC", ROOT / "specs" / "sap_llm.yaml"))
        os.environ["SAP_LLM_RELEASE_SPEC"] = str(longer_windows(spec, args.windows_x) if args.windows_x != 1
                                                 else spec.resolve())
    if args.airflow == "dag-test":  # standalone migrates its own PostgreSQL database
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    stack = LiveStack.start(HOME / "stack", base_port=args.base_port)
    os.environ["SAP_LLM_STACK_DIR"] = str(stack.dir)
    os.environ["AIRFLOW_CONN_SAP_LLM_PROMETHEUS"] = stack.prometheus_connection
    try:
        with (standalone_airflow(stack, args.busy, args.reading_s) if args.airflow == "standalone"
              else contextlib.nullcontext()) as airflow:
            reactions = [one_run(stack, args.step, airflow) for _ in range(args.runs)]
    finally:
        stack.stop()
    report(args, reactions)


def report(args: argparse.Namespace, reactions: list[Reaction]) -> None:
    how = "dag.test()" if args.airflow == "dag-test" else (
        "airflow standalone" + (f", {args.busy} neighbour runs in flight" if args.busy else "")
        + f", approvals answered {args.reading_s:g} s after they wait, windows x{args.windows_x:g}")
    print(f"rollback reaction at the {args.step}% step under {how}, {args.runs} runs (seconds after the injection: "
          "breach decided / router written / last green answer): "
          + ", ".join(f"{r.decided:.1f} / {r.written:.1f} / {r.last_green:.1f}" for r in reactions))
    medians = [statistics.median(getattr(r, field) for r in reactions)
               for field in ("decided", "written", "last_green")]
    goal = 3 if args.airflow == "dag-test" else 5
    print(("median: breach decided {:.1f} s, router written {:.1f} s, last green answer {:.1f} s "
           f"(goal <= {goal} s; Flagger at its defaults: 60 s)").format(*medians))


if __name__ == "__main__":
    main()
