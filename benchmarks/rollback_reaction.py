"""Seconds from errors injected into green to the breach decision, to the router write that takes green's traffic
off, and to the last request green answered (read at nginx).

    .venv/bin/python benchmarks/rollback_reaction.py [--runs 3] [--step 20]

Runs the release DAG (dag.test, rehearsal profile: 1 s scrape, 2 s analysis interval, failure limit 2) against its
own live local stack, injects a 50 % error rate into green when the router reaches the step, and reads the ledger
(the ``breach_decided`` event, the ``breach`` traffic change written where the breach was decided; the rollback's
own change where none was) and nginx's access log. Sets up what it needs: an Airflow home, the ledger, the stack,
the Slack signing connection, and the release manager's Slack clicks that answer the release's approvals (as the
test suite's rehearsals do). Each run starts once the previous run's critical alert has cleared, as a release would.
Goal (issue 18): median at most 3 s from injection to the last green answer under dag.test. (Flagger needs analysis
interval x threshold, 60 s x 1 at its defaults, for the same decision.)
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

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

from sap_llm_release.timestamps import recorded_time  # noqa: E402
from tests.support.approvals import SIGNING_SECRET  # noqa: E402
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
            f"{', '.join(sorted(alert['metric']['alertname'] for alert in firing)) or 'none'}")


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


def one_run(stack: LiveStack, step: int) -> Reaction:
    stack.reset()
    stack.forget_alerts()
    injected: dict[str, float] = {}

    def inject() -> None:
        stack.set_faults("green", error_rate=0.5)
        injected["at"] = time.time()

    stack.when_green_weight(step, inject)
    dag_run, states = run_release(release_conf())
    if "at" not in injected:
        raise NoInjection(f"the release never sent {step} % to green ({why_no_shift(stack, dag_run, states)})")
    if (rollback := states["rollback.rollback_to_blue"]) != "success":
        raise RuntimeError(f"no rollback after the injection: rollback_to_blue is {rollback}")
    return reaction(stack, dag_run, injected["at"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=int, default=20, choices=(5, 20, 50, 100))
    # below Linux's ephemeral port range (32768-60999), like the test suite's stacks
    parser.add_argument("--base-port", type=int, default=25080)
    parser.add_argument("--spec", type=Path, help="release with this spec instead of the project's (the suite's "
                        "smallest size: the traffic rehearsals' spec, whose few gates before the shift change "
                        "nothing after it)")
    args = parser.parse_args()
    if args.spec:
        os.environ["SAP_LLM_RELEASE_SPEC"] = str(args.spec.resolve())
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    stack = LiveStack.start(HOME / "stack", base_port=args.base_port)
    os.environ["SAP_LLM_STACK_DIR"] = str(stack.dir)
    os.environ["AIRFLOW_CONN_SAP_LLM_PROMETHEUS"] = stack.prometheus_connection
    try:
        reactions = [one_run(stack, args.step) for _ in range(args.runs)]
    finally:
        stack.stop()
    print(f"rollback reaction at the {args.step}% step, {args.runs} runs (seconds after the injection: breach "
          "decided / router written / last green answer): "
          + ", ".join(f"{r.decided:.1f} / {r.written:.1f} / {r.last_green:.1f}" for r in reactions))
    medians = [statistics.median(getattr(r, field) for r in reactions)
               for field in ("decided", "written", "last_green")]
    print("median: breach decided {:.1f} s, router written {:.1f} s, last green answer {:.1f} s "
          "(goal <= 3 s; Flagger at its defaults: 60 s)".format(*medians))


if __name__ == "__main__":
    main()
