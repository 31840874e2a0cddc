"""Parse time of every DAG file, as the DAG processor measures it (`airflow dags report`), five runs each, and the
CPU time of serializing each DAG (what the DAG processor stores after every parse, and what every task run rebuilds).

    .venv/bin/python benchmarks/dag_parse.py [--runs 5]
Goal: < 0.2 s per file, and no heavy module (torch, transformers, kubernetes) imported at parse time.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def report(env: dict[str, str]) -> list[dict]:
    airflow = str(Path(sys.executable).parent / "airflow")
    result = subprocess.run([airflow, "dags", "report", "-o", "json"], env=env, capture_output=True, text=True,
                            check=True)
    table = next(line for line in result.stdout.splitlines() if line.startswith("[{"))
    return json.loads(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="dag-parse-")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    }
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True)
    durations: dict[str, list[float]] = {}
    for _ in range(args.runs):
        for row in report(env):
            seconds = row["duration"]
            seconds = _seconds(seconds)
            durations.setdefault(Path(row["file"]).name, []).append(seconds)
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, runpy, glob\n"
         "[runpy.run_path(f) for f in glob.glob('dags/*.py')]\n"
         "print(','.join(m for m in ('torch','transformers','kubernetes','kubernetes_asyncio') if m in sys.modules))"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1:]
    for name, values in sorted(durations.items()):
        median = statistics.median(values)
        verdict = "ok" if median < 0.2 else "OVER GOAL"
        print(f"{name}: median {median:.3f} s over {len(values)} parses (min {min(values):.3f}, max {max(values):.3f})"
              f" - goal < 0.2 s: {verdict}")
    print(f"heavy modules imported at parse time: {heavy[0] if heavy and heavy[0] else 'none'}")
    for dag_id, seconds in serialization_cpu(env, args.runs).items():
        print(f"{dag_id}: serialization median {statistics.median(seconds):.3f} s CPU over {len(seconds)} runs")


SERIALIZE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
bag = DagBag(dag_folder=sys.argv[1])
times = {}
for dag_id, dag in bag.dags.items():
    for _ in range(int(sys.argv[2])):
        started = time.process_time()
        DagSerialization.to_dict(dag)
        times.setdefault(dag_id, []).append(time.process_time() - started)
print(json.dumps(times))
"""


def serialization_cpu(env: dict[str, str], runs: int) -> dict[str, list[float]]:
    """Seconds of CPU each serialization of each DAG took, in one process (the first one warms its caches)."""
    result = subprocess.run([sys.executable, "-c", SERIALIZE, env["AIRFLOW__CORE__DAGS_FOLDER"], str(runs + 1)],
                            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return {dag_id: seconds[1:] for dag_id, seconds in json.loads(result.stdout.splitlines()[-1]).items()}


def _seconds(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if ":" not in value:
        return float(value.rstrip("s"))
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


if __name__ == "__main__":
    main()
