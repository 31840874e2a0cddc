"""Several signed approve and reject clicks for one pending approval at the same moment, through the real plugin
app, on SQLite and on PostgreSQL metadata (each in its own process: tests/support/approval_race.py): exactly one
click decides, Airflow and the ledger agree on it, every other click is told who decided and is recorded as
refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.support.approval_race import CLICKS

ROOT = Path(__file__).resolve().parents[2]
VERBS = {"approve": ("Approved", "Approve", "approved"), "reject": ("Rejected", "Reject", "rejected")}


def _databases(postgres_url: str, tag: str) -> tuple[str, str]:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for name in (f"race_airflow_{tag}", f"race_ledger_{tag}"):
            conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    base = postgres_url.rsplit("/", 1)[0]
    return (base.replace("+psycopg:", "+psycopg2:") + f"/race_airflow_{tag}", base + f"/race_ledger_{tag}")


def race(tmp_path: Path, metadata_url: str, ledger_url: str, *args: str, **extra_env: str) -> dict:
    env = {**os.environ, **extra_env, "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url, "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
           "AIRFLOW_CONN_SAP_LLM_LEDGER": json.dumps({"conn_type": "generic", "extra": {"url": ledger_url}}),
           "AIRFLOW_CONN_SAP_LLM_PROMETHEUS": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9})}
    env.pop("AIRFLOW_CONN_SAP_LLM_SLACK", None)  # no Slack: the approval's message is not the point here
    result = tmp_path / "race.json"
    done = subprocess.run([sys.executable, "-m", "tests.support.approval_race", str(result), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=420)
    assert done.returncode == 0 and result.exists(), done.stderr[-4000:]
    return {**json.loads(result.read_text()), "log": done.stderr}


def task_errors(log: str) -> str:
    """The lines of the race's log that say why a task failed (for a failure's message)."""
    return "\n".join(line[:400] for line in log.splitlines()
                     if any(word in line for word in ("Error", "error", "Traceback", "locked", "failed")))[-6000:]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backends(request, tmp_path):
    """(Airflow metadata URL, ledger URL), both on SQLite files or both on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'airflow.db'}", f"sqlite:///{tmp_path / 'ledger.db'}"
    return _databases(request.getfixturevalue("postgres_url"), tmp_path.name[-12:].lower().replace("-", "_"))


def test_racing_clicks_have_exactly_one_winner(tmp_path, backends):
    result = race(tmp_path, *backends)
    assert result["error"] is None and len(result["replies"]) == len(CLICKS), \
        (result["error"], result["replies"], task_errors(result["log"]))
    replies = result["replies"]
    winners = [r for r in replies if r["ok"]]
    assert len(winners) == 1, [r["text"] for r in replies]
    (winner,) = winners
    verb, option, decision = VERBS[winner["action"]]
    assert winner["text"] == f"{verb}: first_shift_go of {result['request']['release_id']}"

    airflow = result["airflow"]
    assert airflow["chosen_options"] == [option]
    assert airflow["responded_by"]["id"] == f"slack:{winner['user']}"
    assert airflow["state"] == ("success" if decision == "approved" else "failed"), task_errors(result["log"])

    losers = [r for r in replies if not r["ok"]]
    told = f"first_shift_go was already answered: {option} by {winner['user'].lower()} (Slack {winner['user']})"
    assert all((r["status"], r["text"]) == (409, told) for r in losers), [r["text"] for r in losers]

    ledger = result["ledger"]
    outcomes = sorted((row["slack_user"], row["outcome"]) for row in ledger["slack_interactions"])
    assert [o for _, o in outcomes].count("accepted") == 1 and len(outcomes) == len(CLICKS), outcomes
    assert (winner["user"], "accepted") in outcomes
    decided = [row for row in ledger["approvals"] if row["decision"] != "refused"]
    assert [(row["decision"], row["decided_by"]) for row in decided] == [(decision, f"slack:{winner['user']}")], \
        task_errors(result["log"])  # seen once in ~40 runs, under a fresh clone's load: no decided row, cause unknown
    refused = [row for row in ledger["approvals"] if row["decision"] == "refused"]
    # one row per person refused (the approvals key): each refused click has its own row in slack_interactions
    assert {(row["decided_by"], row["detail"]) for row in refused} == {(f"slack:{r['user']}", told) for r in losers}
    (claim,) = ledger["approval_claims"]
    assert (claim["decision"], claim["decided_by"]) == (decision, f"slack:{winner['user']}")


def test_clicks_after_the_approval_timed_out_are_told_the_timeout_decided(tmp_path):
    """The approval's resume claims the timeout, so a click that comes later hears what decided, not its own
    answer and not Airflow's stand-in default ("Reject by the timeout")."""
    spec = yaml.safe_load((ROOT / "specs" / "sap_llm.yaml").read_text())
    spec["profiles"]["rehearsal"]["approval_timeout"] = "3s"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    result = race(tmp_path, f"sqlite:///{tmp_path / 'airflow.db'}", f"sqlite:///{tmp_path / 'ledger.db'}", "--late",
                  SAP_LLM_RELEASE_SPEC=str(spec_file))
    assert result["error"] is None and len(result["replies"]) == len(CLICKS), \
        (result["error"], result["replies"], task_errors(result["log"]))
    told = "first_shift_go was already answered: no answer within the timeout"
    assert all((r["ok"], r["status"]) == (False, 409) and r["text"].startswith(told) for r in result["replies"]), \
        [r["text"] for r in result["replies"]]
    assert result["airflow"]["state"] == "failed"
    ledger = result["ledger"]
    assert [(c["decision"], c["decided_by"], c["channel"]) for c in ledger["approval_claims"]] == [
        ("timed_out", "system", "system")]
    assert [(a["decision"], a["decided_by"]) for a in ledger["approvals"] if a["decision"] != "refused"] == [
        ("timed_out", "system")]
    assert {row["outcome"] for row in ledger["slack_interactions"]} == {"refused"}
    assert len(ledger["slack_interactions"]) == len(CLICKS)
