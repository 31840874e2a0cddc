"""The scheduled audits rehearsed: the local stack, 30 days of the service's history (series at 15 s and its log,
with an error spike, a latency regression, GPU under-use, a throughput dip and a critical alert injected) backfilled
into a Prometheus that sends alerts to the stack's Alertmanager, and Airflow (standalone, LocalExecutor, its metadata
in a throwaway PostgreSQL) running the daily, weekly and monthly audit DAGs, triggered through its REST API for the
history's last day, week and month. Prints each audit's findings and its report's path.

    python scripts/demo_audits.py

The rehearsal stack's Alertmanager sends its notifications nowhere (no Slack or PagerDuty here): the daily audit's
alert_delivery check finds that, as it would find a broken receiver in production. Every process it starts is
stopped when it ends.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from demo import Airflow, airflow_env, say  # noqa: E402

from sap_llm_release.ledger import Ledger  # noqa: E402
from sap_llm_release.rehearsal import local_stack  # noqa: E402
from sap_llm_release.rehearsal.history import (  # noqa: E402
    AlertFired,
    ErrorSpike,
    GpuUnderuse,
    LatencyRegression,
    ThroughputDip,
    backfill,
    history_start,
    prometheus_over,
    write_openmetrics,
    write_service_log,
)
from sap_llm_release.rehearsal.local_postgres import temporary_postgres  # noqa: E402
from sap_llm_release.rehearsal.processes import free_port  # noqa: E402

AUDITS = ("daily", "weekly", "monthly")
DAYS = 31  # the month the monthly audit judges, and the day before it that its first hour's rate window reads
PROBLEMS = (
    ErrorSpike(day=30, hours=(10, 13), error_ratio=0.07),
    AlertFired(day=30, start_hour=10.25, minutes=40, alertname="SapLlmHighErrorRate", severity="critical"),
    LatencyRegression(day=26, hours=(8, 12), p95_s=2.2),
    ThroughputDip(day=28, hours=(14, 18), docs_per_hour=3500),
    GpuUnderuse(days=(12, 14), utilisation_pct=45),
)


def record_history(work: Path, stack_dir: Path) -> Path:
    """The history's series (OpenMetrics, backfilled) and its log, archived beside the stack's blue process log as
    an earlier deployment's; returns the TSDB folder."""
    start = history_start(DAYS)
    began = time.perf_counter()
    recorded = write_openmetrics(work / "history.om", start=start, days=DAYS, step_s=15, problems=PROBLEMS)
    tsdb = backfill(recorded, work / "tsdb")
    write_service_log(stack_dir / f"blue.{int(start.timestamp() * 1000)}.log", start=start, days=DAYS,
                      problems=PROBLEMS)
    say(f"recorded {DAYS} days of history from {start:%Y-%m-%d} (series at 15 s, backfilled with promtool; the "
        f"service log) in {time.perf_counter() - began:.0f} s")
    return tsdb


def show(ledger: Ledger, audit: str, dag_id: str, run_id: str, state: str) -> None:
    """The run's findings, worst first, and its report's path."""
    audit_run_id = f"{dag_id}:{run_id}"
    outcome = ledger.audit_outcome(audit_run_id) or {}
    period = ledger.audit_run(audit_run_id) or {}
    say(f"{audit} audit {period.get('period_start')} .. {period.get('period_end')}: "
        f"{outcome.get('severity', 'no outcome')} (run {state})")
    rank = {"critical": 0, "warning": 1, "ok": 2}
    for finding in sorted(ledger.audit_findings(audit_run_id), key=lambda row: rank.get(row["severity"], 3)):
        measured = f"{finding['measured_value']:g}" if finding["measured_value"] is not None else \
            "none" if finding["severity"] == "ok" else "no data"  # ok with no number: e.g. no crossing forecast
        day = f" on {finding['finding_day']}" if finding["finding_day"] else ""
        print(f"    {finding['severity']:8} {finding['check_name']:24} {measured:>12}{day}  "
              f"[{finding['threshold']}]  {' '.join(finding['detail'].split())[:150]}", flush=True)
    if outcome.get("report_uri"):
        print(f"    report: {url2pathname(urlparse(outcome['report_uri']).path)}", flush=True)


def rehearse(args: argparse.Namespace, metadata_url: str) -> int:
    stack_dir, home, work = ROOT / ".stack" / "audits", ROOT / ".airflow-audits", ROOT / ".stack" / "audit-history"
    for folder in (stack_dir, home, work):
        folder.mkdir(parents=True, exist_ok=True)
    say("starting the local stack: blue behind nginx, Prometheus, Alertmanager")
    stack = local_stack.up(stack_dir, base_port=args.base_port)
    airflow = None
    try:
        tsdb = record_history(work, stack_dir)
        alertmanager = stack["alertmanager_url"].removeprefix("http://")
        with prometheus_over(tsdb, free_port(), alertmanager=alertmanager) as prometheus_url:
            say(f"Prometheus over the history on {prometheus_url}, alerting to the stack's Alertmanager")
            env = airflow_env("LocalExecutor", args.airflow_port, home, metadata_url, None, stack_dir, stack,
                              signing_secret="unused-by-audits")
            host, port = prometheus_url.removeprefix("http://").split(":")
            env.update({"AIRFLOW_CONN_SAP_LLM_PROMETHEUS": json.dumps({"conn_type": "http", "host": host,
                                                                       "port": int(port)}),
                        "SAP_LLM_AUDIT_REPORTS": str(home / "audit-reports"), "SAP_LLM_AUDIT_PROFILE": "rehearsal"})
            airflow = Airflow(home, env, "LocalExecutor", dag_ids=tuple(f"sap_llm_audit_{a}" for a in AUDITS))
            say(f"starting Airflow (standalone, LocalExecutor) on {airflow.url}")
            airflow.start()
            return run_audits(airflow, Ledger(f"sqlite:///{home / 'ledger.db'}"))
    finally:
        say("stopping Airflow and the local stack")
        if airflow is not None:
            airflow.stop()
        local_stack.down(stack_dir)


def run_audits(airflow: Airflow, ledger: Ledger) -> int:
    """Trigger the three audits for the history's last day, week and month; show each as it ends."""
    period_end = (history_start(DAYS) + timedelta(days=DAYS, seconds=-1)).isoformat()
    runs = {}
    for audit in AUDITS:
        dag_id = f"sap_llm_audit_{audit}"
        runs[audit] = (dag_id, airflow.trigger({"profile": "rehearsal", "period_end": period_end}, dag_id))
        say(f"triggered {dag_id} through the REST API, period ending {period_end}")
    finished = 0
    deadline = time.monotonic() + 600
    while runs and time.monotonic() < deadline:
        for audit, (dag_id, run_id) in list(runs.items()):
            state = airflow.run_state(run_id, dag_id)
            if state in ("success", "failed"):
                show(ledger, audit, dag_id, run_id, state)
                del runs[audit]
                finished += 1
        time.sleep(2)
    listed = airflow.api.http.get("/release-board/audits")  # the ledger, through the board plugin
    listed.raise_for_status()
    say(f"the release board lists {len(listed.json())} audit runs; {finished} of {len(AUDITS)} audits finished")
    return 0 if finished == len(AUDITS) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-port", type=int, default=18380)
    parser.add_argument("--airflow-port", type=int, default=18580)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with temporary_postgres("airflow", driver="psycopg2") as metadata_url:
        if metadata_url is None:
            raise SystemExit("PostgreSQL is not installed (make setup installs Debian's postgresql)")
        return rehearse(args, metadata_url)


if __name__ == "__main__":
    sys.exit(main())
