"""The monthly audit over 30 days of recorded history at 15 s resolution, run as its DAG runs (``dag.test()``: every
task, in this process) against a real Prometheus: the run's wall time, and the number and total time of the
Prometheus queries it made (Prometheus's own request counters, so the client's retries and waits are not hidden).

    .venv/bin/python benchmarks/audit_month.py [--runs 3] [--days 30] [--step-s 15]
Goal: < 60 s per run on 2 cores.
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
from datetime import timedelta
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sap_llm_release.rehearsal.history import (  # noqa: E402
    GpuUnderuse,
    LatencyRegression,
    ThroughputDip,
    backfill,
    history_start,
    prometheus_over,
    write_openmetrics,
)
from sap_llm_release.rehearsal.processes import free_port  # noqa: E402

QUERY_HANDLERS = ("/api/v1/query", "/api/v1/query_range")


def day_at(days: int, fraction: float) -> int:
    """The day ``fraction`` of the way through the history, never its first (the lead day) or past its last."""
    return max(1, min(days - 1, round(days * fraction)))


def query_counters(prometheus_url: str) -> tuple[float, float]:
    """(queries answered, seconds spent answering them) by Prometheus's query endpoints so far."""
    count = total_s = 0.0
    text = httpx.get(f"{prometheus_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name != "prometheus_http_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("handler") in QUERY_HANDLERS:
                if sample.name.endswith("_count"):
                    count += sample.value
                elif sample.name.endswith("_sum"):
                    total_s += sample.value
    return count, total_s


def airflow_home(home: Path, prometheus_url: str) -> None:
    """An Airflow home of its own (SQLite metadata, migrated) with the audit's connections."""
    host, port = prometheus_url.removeprefix("http://").split(":")
    os.environ.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW_CONN_SAP_LLM_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(home / "ledger.db")}),
        "AIRFLOW_CONN_SAP_LLM_PROMETHEUS": json.dumps({"conn_type": "http", "host": host, "port": int(port)}),
        "SAP_LLM_AUDIT_REPORTS": str(home / "reports"),
    })
    for name in ("AIRFLOW_CONN_SAP_LLM_SLACK", "AIRFLOW_CONN_SAP_LLM_PAGERDUTY"):
        os.environ.pop(name, None)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--step-s", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="audit-month-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    days = args.days + 1  # a day before the period, for the first hour's rate window
    start = history_start(days)
    problems = [LatencyRegression(day=day_at(days, 0.7), hours=(8, 12), p95_s=2.0),
                GpuUnderuse(days=(day_at(days, 0.2), day_at(days, 0.25)), utilisation_pct=40),
                ThroughputDip(day=day_at(days, 0.85), hours=(14, 18), docs_per_hour=4000)]
    began = time.perf_counter()
    recorded = write_openmetrics(work / "history.om", start=start, days=days, step_s=args.step_s, problems=problems)
    written = time.perf_counter()
    tsdb = backfill(recorded, work / "tsdb")
    print(f"history: {args.days} days at {args.step_s} s written in {written - began:.1f} s, backfilled with promtool "
          f"in {time.perf_counter() - written:.1f} s", flush=True)
    with prometheus_over(tsdb, free_port()) as url:
        airflow_home(work / "airflow", url)
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(ROOT / "dags")).dags["sap_llm_audit_monthly"]
        period_end = (start + timedelta(days=days, seconds=-1)).isoformat()
        walls, queries, query_s = [], [], []
        for _ in range(args.runs):
            count_before, seconds_before = query_counters(url)
            began = time.perf_counter()
            dag_run = dag.test(run_conf={"profile": "rehearsal", "period_end": period_end})
            walls.append(time.perf_counter() - began)
            count_after, seconds_after = query_counters(url)
            queries.append(count_after - count_before)
            query_s.append(seconds_after - seconds_before)
            print(f"run: {dag_run.state}, {walls[-1]:.1f} s, {queries[-1]:.0f} queries, {query_s[-1]:.2f} s in "
                  f"Prometheus", flush=True)
    print(f"monthly audit over {args.days} days at {args.step_s} s, {args.runs} runs: wall median "
          f"{statistics.median(walls):.1f} s (goal < 60 s); Prometheus queries per run: median "
          f"{statistics.median(queries):.0f}, total time median {statistics.median(query_s):.2f} s")


if __name__ == "__main__":
    main()
