"""A full release rehearsal on the embedded default: the local stack, Airflow (standalone, LocalExecutor, its
metadata in a throwaway PostgreSQL), the release DAG triggered through Airflow's REST API, progress phase by phase,
and a summary read from the ledger.

    python scripts/demo.py                      # a clean release
    python scripts/demo.py --inject-errors-at 20  # errors in green during the 20 % step: automatic rollback
    python scripts/demo.py --executor celery    # the same on Airflow's separate components and CeleryExecutor
                                                # (api-server, scheduler, dag-processor, triggerer, a Celery worker;
                                                # a throwaway Redis as the broker)

Each approval the release asks for is answered the way Slack answers a button click: a request signed with the
signing secret, posted to the callback plugin on Airflow's API server, as the release manager's Slack user. The
release talks to local stand-ins of Slack's Web API and PagerDuty's Events API (sap_llm_release/rehearsal/standins.py)
through the same clients and connections as in production; what they received (the release's Slack thread, its pages)
is printed at the end, with the release board's address and the login that opens it.

Every process it starts is stopped when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operators import deployment  # noqa: E402
from sap_llm_release.analysis.prometheus import PrometheusProvider  # noqa: E402
from sap_llm_release.rehearsal import local_stack  # noqa: E402
from sap_llm_release.rehearsal.airflow_processes import (  # noqa: E402
    PASSWORDS_FILE,
    AirflowClient,
    AirflowProcesses,
    SlackButtons,
)
from sap_llm_release.rehearsal.local_postgres import temporary_postgres  # noqa: E402
from sap_llm_release.rehearsal.local_redis import temporary_redis  # noqa: E402
from sap_llm_release.rehearsal.standins import PagerDutyEvents, SlackWebApi, slack_and_pagerduty  # noqa: E402
from sap_llm_release.spec import Phase, load_spec  # noqa: E402
from sap_llm_release.targets import Target, local_target  # noqa: E402

SPEC_FILE = ROOT / "specs" / "sap_llm.yaml"
DAG_ID = "sap_llm_release"
TERMINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Airflow:
    """The rehearsal's Airflow: ``airflow standalone`` (LocalExecutor), or its separate components on the
    CeleryExecutor with a Redis broker (operators/deployment.py), reached through the REST API."""

    def __init__(self, home: Path, env: dict[str, str], executor: str, dag_ids: tuple[str, ...] = (DAG_ID,)) -> None:
        commands = deployment.components(executor) if executor == "CeleryExecutor" else {"standalone": "standalone"}
        self.processes = AirflowProcesses(home, env, commands)
        self.url = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
        self.api = AirflowClient(self.url, home)
        self.executor, self.dag_ids = executor, dag_ids

    def start(self) -> None:
        if self.executor == "CeleryExecutor":
            self.processes.migrate()
        self.processes.start()
        try:
            self.api.wait_ready(self.dag_ids, 180, self.processes.exited)
        except RuntimeError as error:
            raise SystemExit(str(error)) from error

    def stop(self) -> None:
        self.processes.stop()

    def trigger(self, conf: dict, dag_id: str = DAG_ID) -> str:
        return self.api.trigger(dag_id, conf)

    def run_state(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return self.api.run_state(dag_id, run_id)

    def task_states(self, run_id: str) -> dict[str, str | None]:
        return self.api.task_states(DAG_ID, run_id)


def approve_open(buttons: SlackButtons, answered: set[str], run_id: str, states: dict[str, str | None],
                 approvals: list[str]) -> list[str]:
    """Click Approve on each approval that waits, once; return lines saying what the plugin answered."""
    answers = buttons.approve_waiting(f"{DAG_ID}:{run_id}", states, approvals, answered)
    return [f"approval {name}: Slack user {buttons.user} clicked Approve -> {answer}"
            for name, answer in answers.items()]


def attestations(operator: str) -> dict[str, dict[str, str]]:
    checklist = (ROOT.parent / "shared" / "seed").resolve()
    link = f"file://{checklist}" if checklist.exists() else "file:///docs/checklist"
    spec = yaml.safe_load(SPEC_FILE.read_text())
    return {g["name"]: {"by": operator, "link": link} for g in spec["gates"] if g["kind"] == "attestation"}


def group_progress(states: dict[str, str | None], reported: set[str]) -> list[str]:
    """Lines for the task groups that just finished."""
    lines = []
    for group in [p.value for p in Phase] + ["rollback"]:
        tasks = {t: s for t, s in states.items() if t.startswith(group + ".")}
        if group in reported or not tasks or not all(s in TERMINAL for s in tasks.values()):
            continue
        reported.add(group)
        counts = Counter(tasks.values())
        lines.append(f"phase {group:<20} " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return lines


def slo_line(prometheus: PrometheusProvider, rate_window: str) -> str:
    green = 'colour="green"'
    queries = {
        "green error rate": f'(sum(rate(sap_llm_requests_total{{{green},status=~"5.."}}[{rate_window}])) or vector(0))'
        f" / sum(rate(sap_llm_requests_total{{{green}}}[{rate_window}]))",
        "green P95 s": "histogram_quantile(0.95, sum by (le) "
        f"(rate(sap_llm_request_duration_seconds_bucket{{{green}}}[{rate_window}])))",
        "docs/h": f"sum(rate(sap_llm_documents_processed_total[{rate_window}])) * 3600",
    }
    parts = []
    for name, query in queries.items():
        try:
            value = prometheus.query(query)
        except Exception as exc:  # progress output only; the DAG itself decides on these values
            value = f"unavailable ({type(exc).__name__})"
        parts.append(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}")
    return ", ".join(parts)


def _measured(row: dict) -> str:
    value = row["measured_value"] if row["measured_value"] is not None else row["measured_text"]
    return f"{value:g}" if isinstance(value, float) else str(value)


def summary(record: dict, release_id: str) -> None:
    release = record["releases"][0]
    say(f"ledger (through the release board plugin): release {release_id}")
    print(f"  {release['service']} {release['version']} -> {release['environment']} ({release['profile']}), "
          f"triggered by {release['triggered_by']}")
    verdicts = Counter(row["verdict"] for row in record["gate_results"])
    print("  gates: " + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items()))
          + "  (passed/failed: verified by a check; attested: a person's word with a link; waived: not on this target)")
    latest = {row["gate"]: row for row in record["gate_results"]}  # rows come in time order: the last try wins
    for phase in dict.fromkeys(row["phase"] for row in latest.values()):
        rows = [row for row in latest.values() if row["phase"] == phase]
        counts = Counter(row["verdict"] for row in rows)
        print(f"    {phase:<20} " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        verified = [f"{row['gate']}={_measured(row)}" for row in rows if row["verdict"] == "passed"]
        if verified:
            print(f"      verified: {', '.join(verified)}")
    for row in record["gate_results"]:
        if row["verdict"] == "failed":
            print(f"    FAILED {row['gate']}: measured {_measured(row)}, threshold {row['threshold']} "
                  f"({row['detail']})")
    for change in record["traffic_changes"]:
        before, after = (f"blue {change[f'blue_{w}']}/green {change[f'green_{w}']}" for w in ("before", "after"))
        print(f"  traffic {change['changed_at']}: {before} -> {after} ({change['reason']})")
    for approval in record["approvals"]:
        print(f"  approval {approval['recorded_at']}: {approval['gate']} {approval['decision']} by "
              f"{approval['decided_by']} ({approval['channel']})")
    for window in record["slo_windows"]:
        seconds = f"{window['window_seconds']:.0f}s"
        print(f"  SLO window {window['step']} ({seconds}): {window['verdict']} - {window['reason']}")
    _rollback_summary(record)
    for event in record["release_events"]:
        print(f"  event {event['recorded_at']}: {event['event']} {event['detail']}")


def _rollback_summary(record: dict) -> None:
    for rollback in record["rollbacks"]:
        print(f"  ROLLBACK {rollback['completed_at']}: cause {rollback['cause']}; "
              f"blue {rollback['blue_weight_after']}%, green removed {bool(rollback['green_removed'])}, "
              f"blue healthy {bool(rollback['blue_healthy'])}")
    for counted in record["rollback_lost_requests"]:
        print(f"  LOST REQUESTS during the switch: {counted['verdict']} - {counted['detail']}")


def notifications(slack: SlackWebApi, pagerduty: PagerDutyEvents) -> None:
    """What the release told Slack and PagerDuty, as their stand-ins received it."""
    say(f"Slack (stand-in at {slack.url}): the release's thread")
    for request in slack.requests:
        method, body = request["path"].rsplit("/", 1)[-1], request["body"]
        if method in ("chat.postMessage", "chat.update"):
            reply = " (in thread)" if body.get("thread_ts") else ""
            first_line = str(body.get("text", "")).splitlines()[0] if body.get("text") else ""
            print(f"  {method} {body.get('channel', '')}{reply}: {first_line}")
    events = pagerduty.events()
    say(f"PagerDuty (stand-in at {pagerduty.url}): " + ("events" if events else "nothing paged"))
    for event in events:
        print(f"  {event['event_action']} {event['dedup_key']}: {event.get('payload', {}).get('summary', '')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inject-errors-at", type=int, choices=(5, 20, 50, 100), help="green weight to break at")
    parser.add_argument("--executor", choices=("local", "celery"), default="local",
                        help="local: airflow standalone; celery: the separate components, a Celery worker, Redis")
    parser.add_argument("--base-port", type=int, default=18080)
    parser.add_argument("--airflow-port", type=int, default=18280)
    parser.add_argument("--version", default="1.1.0")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop what was started, as on Ctrl-C
    with temporary_postgres("airflow", driver="psycopg2") as metadata_url, temporary_redis() as broker_url:
        if metadata_url is None:
            raise SystemExit("PostgreSQL is not installed (make setup installs Debian's postgresql)")
        if args.executor == "celery" and broker_url is None:
            raise SystemExit("Redis is not installed (make setup installs Debian's redis-server)")
        return rehearse(args, metadata_url, broker_url)


def airflow_env(executor: str, port: int, home: Path, metadata_url: str, broker_url: str | None, stack_dir: Path,
                stack: dict, signing_secret: str) -> dict[str, str]:
    """Airflow's environment for ``executor`` with its API on ``port`` (operators/deployment.py), with the
    rehearsal's connections: the ledger, the local stack's Prometheus, the Slack signing secret (Slack's and
    PagerDuty's stand-ins: :func:`notification_connections`)."""
    return {
        **deployment.local_environment(home, executor, metadata_url, port, broker_url),
        "SAP_LLM_STACK_DIR": str(stack_dir),
        "AIRFLOW_CONN_SAP_LLM_LEDGER": json.dumps({"conn_type": "sqlite", "host": str(home / "ledger.db")}),
        "AIRFLOW_CONN_SAP_LLM_PROMETHEUS": json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": stack["ports"]["prometheus"]}
        ),
        "AIRFLOW_CONN_SAP_LLM_SLACK_SIGNING": json.dumps({"conn_type": "generic", "password": signing_secret}),
    }


def notification_connections(slack: SlackWebApi, pagerduty: PagerDutyEvents, channel: str) -> dict[str, str]:
    """The release's Slack and PagerDuty connections, pointed at the stand-ins (as the tests wire them)."""
    return {
        "AIRFLOW_CONN_SAP_LLM_SLACK": json.dumps({"conn_type": "slack", "password": "xoxb-rehearsal",
                                                  "extra": {"base_url": slack.url, "channel": channel}}),
        "AIRFLOW_CONN_SAP_LLM_PAGERDUTY": json.dumps({"conn_type": "pagerduty_events",
                                                      "password": "R0UT1NGKEY0000000000000000000000",
                                                      "extra": {"url": pagerduty.url, "verify": pagerduty.ca_file}}),
    }


def follow(airflow: Airflow, run_id: str, buttons: SlackButtons, target: Target, prometheus: PrometheusProvider,
           inject_errors_at: int | None) -> str:
    """Report the run's phases, traffic and SLOs every 2 s until it ends, answering approvals as they open (and
    injecting errors into green at ``inject_errors_at`` %); return the run's final state."""
    spec = load_spec(SPEC_FILE)
    approvals = [approval.name for approval in spec.approvals]
    injected, reported, answered, last_split = False, set(), set(), None
    while (state := airflow.run_state(run_id)) not in ("success", "failed"):
        states = airflow.task_states(run_id)
        for line in [*group_progress(states, reported), *approve_open(buttons, answered, run_id, states, approvals)]:
            say(line)
        split = target.router.get_weights()
        if split != last_split or any(s == "deferred" for s in states.values()):
            say(f"traffic {split}; {slo_line(prometheus, spec.rate_window('rehearsal'))}")
            last_split = split
        if inject_errors_at and not injected and split.green == inject_errors_at:
            faults = httpx.post(f"{target.url('green')}/admin/faults", json={"error_rate": 0.5}, timeout=5)
            faults.raise_for_status()
            injected = True
            say(f"INJECTED: green now fails 50% of documents at {split.green}% traffic")
        time.sleep(2)
    for line in group_progress(airflow.task_states(run_id), reported):
        say(line)
    return state


def rehearse(args: argparse.Namespace, metadata_url: str, broker_url: str | None) -> int:
    """The rehearsal, with Airflow's metadata in the PostgreSQL database at ``metadata_url`` (and Celery's broker at
    ``broker_url``)."""
    stack_dir, home = ROOT / ".stack" / "demo", ROOT / ".airflow"
    stack_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(exist_ok=True)
    say("starting the local stack: blue 1.0.0 behind nginx, Prometheus (1 s scrape), steady traffic")
    stack = local_stack.up(stack_dir, base_port=args.base_port)
    signing_secret = secrets.token_hex(16)
    executor = "CeleryExecutor" if args.executor == "celery" else "LocalExecutor"
    try:
        with slack_and_pagerduty(home / "pagerduty-tls") as (slack, pagerduty):
            env = {**airflow_env(executor, args.airflow_port, home, metadata_url, broker_url, stack_dir, stack,
                                 signing_secret), **notification_connections(slack, pagerduty, "#releases")}
            state = run_the_release(args, Airflow(home, env, executor), local_target(stack_dir), stack,
                                    signing_secret)
            notifications(slack, pagerduty)
    finally:
        say("stopping the local stack")
        local_stack.down(stack_dir)
    expected = "failed" if args.inject_errors_at else "success"
    return 0 if state == expected else 1


def run_the_release(args: argparse.Namespace, airflow: Airflow, target: Target, stack: dict,
                    signing_secret: str) -> str:
    """Start Airflow, trigger the release, follow it to its end and print its record; return the run's state."""
    spec = load_spec(SPEC_FILE)
    try:
        how = ("separate components: " + ", ".join(airflow.processes.commands) + "; Redis broker"
               if args.executor == "celery" else "standalone")
        say(f"starting Airflow ({how}) on {airflow.url}")
        airflow.start()
        conf = {
            "version": args.version, "environment": "rehearsal", "profile": "rehearsal",
            "attestations": attestations(os.environ.get("USER", "rehearsal-operator")),
        }
        run_id = airflow.trigger(conf)
        release_id = f"{DAG_ID}:{run_id}"
        password = json.loads((airflow.processes.home / PASSWORDS_FILE).read_text())["admin"]
        say(f"triggered {DAG_ID} run {run_id} through the REST API; while it runs, the Airflow UI is at "
            f"{airflow.url} (login admin / {password}): the run's Release board tab, or "
            f"{airflow.url}/release-board/view?{urlencode({'release_id': release_id})} once logged in")
        manager = spec.approvals[0].approvers[0] if spec.approvals else ""
        buttons = SlackButtons(airflow.url, signing_secret, user=manager, team=spec.slack_team or "", reading_s=2)
        state = follow(airflow, run_id, buttons, target, PrometheusProvider(stack["prometheus_url"]),
                       args.inject_errors_at)
        say(f"release run finished: {state}; router now {target.router.get_weights()}")
        board = airflow.api.http.get(f"/release-board/releases/{release_id}")  # the ledger, through the plugin
        board.raise_for_status()
        summary(board.json(), release_id)
        return state
    finally:
        say("stopping Airflow")
        airflow.stop()


if __name__ == "__main__":
    sys.exit(main())
