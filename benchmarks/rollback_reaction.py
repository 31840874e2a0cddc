"""Seconds from errors injected into green to 100 % of requests answered by blue, measured at nginx.

    .venv/bin/python benchmarks/rollback_reaction.py [--runs 3] [--step 20]

Runs the release DAG (dag.test, rehearsal profile: 1 s scrape, 2 s analysis interval, failure limit 2) against its
own live local stack, injects a 50 % error rate into green when the router reaches the step, and reads nginx's
access log: the reaction is the time of the last request green answered minus the time of the injection.
Goal: <= 15 s. (Flagger needs analysis interval x threshold, 60 s x 1 at its defaults, for the same decision.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOME = Path(tempfile.mkdtemp(prefix="rollback-bench-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_CONN_SAP_LLM_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(HOME / "ledger.db")}),
    }
)
sys.path.insert(0, str(ROOT))

from tests.support.runs import release_conf, run_release  # noqa: E402
from tests.support.stack import LiveStack  # noqa: E402


def last_green_answer(access_log: Path, green_address: str, since: float) -> float | None:
    """Timestamp of the last request nginx sent to green after ``since``."""
    last = None
    for line in access_log.read_text().splitlines():
        stamp, upstream = line.split(" ", 2)[:2]
        if float(stamp) >= since and green_address in upstream:
            last = float(stamp)
    return last


def one_run(stack: LiveStack, step: int) -> float:
    stack.reset()
    injected: dict[str, float] = {}

    def inject() -> None:
        stack.set_faults("green", error_rate=0.5)
        injected["at"] = time.time()

    stack.when_green_weight(step, inject)
    dag_run, states = run_release(release_conf())
    assert states["rollback.rollback_to_blue"] == "success", states
    green = f"127.0.0.1:{stack.info['ports']['green']}"
    last = last_green_answer(stack.dir / "access.log", green, injected["at"])
    return (last or injected["at"]) - injected["at"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--step", type=int, default=20, choices=(5, 20, 50, 100))
    parser.add_argument("--base-port", type=int, default=48080)
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    stack = LiveStack.start(HOME / "stack", base_port=args.base_port)
    os.environ["SAP_LLM_STACK_DIR"] = str(stack.dir)
    os.environ["AIRFLOW_CONN_SAP_LLM_PROMETHEUS"] = stack.prometheus_connection
    try:
        reactions = [one_run(stack, args.step) for _ in range(args.runs)]
    finally:
        stack.stop()
    print(f"rollback reaction at the {args.step}% step, {args.runs} runs: "
          + ", ".join(f"{r:.1f} s" for r in reactions))
    print(f"median {statistics.median(reactions):.1f} s (goal <= 15 s; Flagger at its defaults: 60 s)")


if __name__ == "__main__":
    main()
