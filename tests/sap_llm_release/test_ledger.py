"""The release ledger on SQLite and on PostgreSQL: migrations, append-only records, retries and the lock."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime

import pytest
import sqlalchemy
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from sap_llm_release.evidence import Evidence, Verdict
from sap_llm_release.jobs.base import JobOutcome
from sap_llm_release.ledger import EnvironmentLocked, Ledger, LedgerError, Writer, migrations

MIGRATIONS = ["001_ledger", "002_append_only", "003_job_results", "004_job_results_append_only",
              "005_slack_interactions", "006_slack_interactions_append_only", "007_approval_requests",
              "008_approval_requests_append_only", "009_approval_claims", "010_approval_claims_append_only",
              "011_audits", "012_audits_append_only", "013_audit_job_results", "014_audit_job_results_append_only",
              "015_disaster_recovery", "016_disaster_recovery_append_only", "017_rollback_lost_requests",
              "018_rollback_lost_requests_append_only", "019_traffic_changes_keyed_by_reason"]
RECORD_TABLES = (
    "releases",
    "release_events",
    "gate_results",
    "slo_windows",
    "approval_requests",
    "approval_claims",
    "approvals",
    "traffic_changes",
    "rollbacks",
    "rollback_lost_requests",
    "notifications",
    "job_results",
)
STARTED = "2026-01-01T00:00:00+00:00"
JOB_OUTCOME = JobOutcome(job="model_evaluation", image="validator", command="evaluate", runner="local_process",
                         exit_code=0, result_text='{"passed": true, "accuracy": 0.97}', detail="exit 0",
                         started_at=STARTED, finished_at=STARTED)
WRITER = Writer(dag_id="sap_llm_release", run_id="manual__2026-01-01", task_id="record", try_number=1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_ledger(request, tmp_path):
    """An empty, unmigrated ledger: a new SQLite file, or a new schema in the test PostgreSQL database."""
    if request.param == "sqlite":
        ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield ledger
        ledger.engine.dispose()
        return
    base_url = request.getfixturevalue("postgres_url")
    schema = f"ledger_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    ledger = Ledger(f"{base_url}?options=-csearch_path%3D{schema}")
    try:
        yield ledger
    finally:
        ledger.engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def ledger(fresh_ledger):
    fresh_ledger.migrate()
    return fresh_ledger


@pytest.fixture
def release_id(ledger):
    release = f"rel-{uuid.uuid4().hex[:10]}"
    record_release(ledger, release)
    return release


def record_release(ledger: Ledger, release_id: str, writer: Writer = WRITER, version: str = "2.0.0") -> None:
    ledger.record_release(
        release_id,
        service="sap-llm",
        environment="rehearsal",
        version=version,
        profile="rehearsal",
        triggered_by="alice",
        spec_digest="321a89f087b29f1c",
        blue_slot="green",
        writer=writer,
    )


def record_each(ledger: Ledger, release_id: str, writer: Writer) -> None:
    """One write through every record_* method except record_release."""
    ledger.record_event(release_id, "started", "release started", writer)
    ledger.record_gate(
        release_id,
        gate="dr_rto",
        phase="preflight",
        kind="report_metric",
        evidence=Evidence(Verdict.PASSED, 42, "< 60 min", "rto_minutes from dr_drill.json", "file:///r/dr.json"),
        writer=writer,
    )
    ledger.record_slo_window(
        release_id,
        step="step_005",
        green_weight=5,
        verdict="passed",
        reason="all SLOs met over the window",
        window_seconds=4.0,
        checks=[{"name": "error_rate", "checks": 2, "failures": 0}],
        started_at=STARTED,
        writer=writer,
    )
    ledger.record_traffic_change(
        release_id, reason="step_005", before=(100, 0), after=(95, 5), router="nginx upstream sap_llm", writer=writer
    )
    ledger.record_rollback(
        release_id,
        cause="SLO error_rate failed",
        blue_weight_after=100,
        green_removed=True,
        blue_healthy=True,
        detail="rolled back",
        started_at=STARTED,
        writer=writer,
    )
    ledger.record_lost_requests(release_id, window=(datetime.fromisoformat(STARTED), datetime.fromisoformat(STARTED)),
                                source="nginx access log", requests=120, lost=0, max_lost=0,
                                passed=True, detail="120 requests, none lost", writer=writer)
    ledger.record_approval_request(
        release_id, approval="go_live", point="full_traffic", map_index=-1, slack_channel="C0RELEASES",
        slack_ts="1700000000.000001", evidence=["smoke_green: 4 passed"], deadline=STARTED, writer=writer,
    )
    ledger.claim_approval(release_id, approval="go_live", try_number=writer.try_number, decision="approved",
                          decided_by="bob", channel="airflow", answer="Approve by bob")
    ledger.record_approval(
        release_id,
        gate="go_live",
        decision="approved",
        decided_by="bob",
        channel="airflow",
        detail="looks good",
        writer=writer,
    )
    ledger.record_notification(
        release_id,
        channel="slack",
        kind="started",
        dedup_key=f"{release_id}:started",
        status="sent",
        detail="#releases",
        writer=writer,
    )
    ledger.record_job_result(release_id, JOB_OUTCOME, writer)


def counts(ledger: Ledger, release_id: str) -> dict[str, int]:
    return {table: len(rows) for table, rows in ledger.release_record(release_id).items()}


# -- migrations ----------------------------------------------------------------------------------------------------


def test_migrate_is_idempotent(fresh_ledger):
    assert fresh_ledger.migrate() == MIGRATIONS
    assert fresh_ledger.migrate() == []
    assert fresh_ledger.applied_migrations() == MIGRATIONS


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_pick_the_dialect_variant(dialect):
    chosen = dict(migrations(dialect))
    assert list(chosen) == MIGRATIONS
    assert chosen["001_ledger"].name == "001_ledger.sql"
    assert chosen["002_append_only"].name == f"002_append_only.{dialect}.sql"


def test_job_results_keep_the_json_as_written_and_the_latest_try_wins(ledger, release_id):
    ledger.record_job_result(release_id, JOB_OUTCOME, WRITER)
    retried = replace(JOB_OUTCOME, result_text='{"passed": false, "accuracy": 0.5}', exit_code=1)
    ledger.record_job_result(release_id, retried, replace(WRITER, try_number=2))
    rows = ledger.release_record(release_id)["job_results"]
    assert [(row["try_number"], row["exit_code"], bool(row["passed"])) for row in rows] == [(1, 0, True), (2, 1, False)]
    assert rows[0]["result_json"] == JOB_OUTCOME.result_text and len(rows[0]["result_sha256"]) == 64
    assert ledger.job_result(release_id, "model_evaluation") == {"passed": False, "accuracy": 0.5}
    assert ledger.job_result(release_id, "load_test") is None
    crashed = replace(JOB_OUTCOME, result_text=None, exit_code=137)
    ledger.record_job_result(release_id, crashed, replace(WRITER, try_number=3))
    assert ledger.job_result(release_id, "model_evaluation") == {"passed": False, "accuracy": 0.5}
    garbage = replace(JOB_OUTCOME, result_text="not json", exit_code=0)
    ledger.record_job_result(release_id, garbage, replace(WRITER, try_number=4))
    assert ledger.job_result(release_id, "model_evaluation") == {"passed": False, "accuracy": 0.5}


def test_a_replayed_slack_request_finds_its_digest_taken(ledger):
    record = {"request_sha256": "ab" * 32, "slack_timestamp": "1800000000", "outcome": "refused",
              "detail": "invalid Slack signature"}
    assert ledger.record_slack_interaction(**record) is True
    assert ledger.record_slack_interaction(**{**record, "outcome": "approved"}) is False
    (row,) = ledger.slack_interactions()
    assert (row["outcome"], row["release_id"]) == ("refused", None)


def test_recent_releases_of_some_dags_are_limited_after_the_filter(ledger):
    mine = [f"rel-mine-{n}" for n in range(2)]
    for release in mine:
        record_release(ledger, release, Writer("sap_llm_release", release, "start_release", 1))
    for n in range(3):  # newer releases of a DAG the reader may not see
        record_release(ledger, f"rel-other-{n}", Writer("other_release_dag", f"other-{n}", "start_release", 1))
    assert set(ledger.release_dag_ids()) == {"sap_llm_release", "other_release_dag"}
    assert [r["release_id"] for r in ledger.recent_releases(2, dag_ids={"sap_llm_release"})] == mine[::-1]
    assert [r["release_id"] for r in ledger.recent_releases(2)] == ["rel-other-2", "rel-other-1"]
    assert ledger.recent_releases(2, dag_ids=set()) == []


def test_named_queries_read_what_was_recorded(ledger, release_id):
    assert (ledger.latest_event(release_id), ledger.latest_traffic_change(release_id)) == (None, None)
    assert ledger.slo_windows(release_id) == [] and ledger.sent_notifications(release_id, "slack") == []
    record_each(ledger, release_id, WRITER)
    ledger.record_slo_window(release_id, step="step_020", green_weight=20, verdict="failed", reason="error_rate",
                             window_seconds=3.0, checks=[], started_at="2026-01-01T00:00:00", writer=WRITER)
    ledger.record_traffic_change(release_id, reason="rollback", before=(80, 20), after=(100, 0), router="nginx",
                                 writer=Writer(WRITER.dag_id, WRITER.run_id, "rollback.rollback_to_blue", 1))
    assert ledger.release(release_id)["triggered_by"] == "alice" and ledger.release("rel-none") is None
    assert ledger.latest_event(release_id)["event"] == "started"
    assert [w["step"] for w in ledger.slo_windows(release_id)] == ["step_005", "step_020"]
    assert [w["step"] for w in ledger.slo_windows(release_id, verdict="failed")] == ["step_020"]
    assert ledger.latest_traffic_change(release_id)["reason"] == "rollback"
    assert [n["channel"] for n in ledger.sent_notifications(release_id, "slack")] == ["slack"]


def test_a_slack_request_is_seen_once_recorded(ledger):
    assert not ledger.slack_request_seen("d" * 64)
    ledger.record_slack_interaction(request_sha256="d" * 64, slack_timestamp="1", outcome="refused", detail="x")
    assert ledger.slack_request_seen("d" * 64)


def test_badly_named_migration_is_refused(tmp_path):
    (tmp_path / "001_ledger.sql").write_text("")
    (tmp_path / "2_more.sql").write_text("")
    with pytest.raises(LedgerError, match="migration 2_more.sql: name must be NNN_name.sql"):
        migrations("sqlite", tmp_path)


# -- records -------------------------------------------------------------------------------------------------------


def test_every_record_method_writes_a_row(ledger, release_id):
    record_each(ledger, release_id, WRITER)
    record = ledger.release_record(release_id)
    assert {table: len(rows) for table, rows in record.items()} == dict.fromkeys(RECORD_TABLES, 1)

    release = record["releases"][0]
    assert (release["version"], release["profile"], release["triggered_by"], release["run_id"]) == (
        "2.0.0",
        "rehearsal",
        "alice",
        "manual__2026-01-01",
    )
    assert (record["release_events"][0]["event"], record["release_events"][0]["try_number"]) == ("started", 1)
    assert ledger.blue_slot(release_id) == "green"

    gate = record["gate_results"][0]
    assert (gate["gate"], gate["verdict"], gate["measured_value"], gate["measured_text"], gate["threshold"]) == (
        "dr_rto",
        "passed",
        42.0,
        None,
        "< 60 min",
    )
    assert gate["evidence_uri"] == "file:///r/dr.json"
    window = record["slo_windows"][0]
    assert (window["step"], window["green_weight"], window["verdict"], window["window_seconds"]) == (
        "step_005",
        5,
        "passed",
        4.0,
    )
    assert json.loads(window["checks_json"]) == [{"checks": 2, "failures": 0, "name": "error_rate"}]
    change = record["traffic_changes"][0]
    assert (change["blue_before"], change["green_before"], change["blue_after"], change["green_after"]) == (
        100,
        0,
        95,
        5,
    )
    rollback = record["rollbacks"][0]
    assert (rollback["blue_weight_after"], rollback["green_removed"], rollback["blue_healthy"]) == (100, 1, 1)
    approval = record["approvals"][0]
    assert (approval["decision"], approval["decided_by"], approval["channel"]) == ("approved", "bob", "airflow")
    notification = record["notifications"][0]
    assert (notification["channel"], notification["status"], notification["dedup_key"]) == (
        "slack",
        "sent",
        f"{release_id}:started",
    )


def test_attested_and_textual_evidence(ledger, release_id):
    attested = Evidence(Verdict.ATTESTED, None, "", "attested by Sam (SRE)", "https://wiki/dr", {"attested_by": "Sam"})
    ledger.record_gate(release_id, gate="dr_runbook", phase="preflight", kind="attestation", evidence=attested,
                       writer=WRITER)
    textual = Evidence(Verdict.FAILED, "n/a", "== 0", "odd")
    ledger.record_gate(release_id, gate="odd_gate", phase="preflight", kind="report_metric", evidence=textual,
                       writer=WRITER)
    rows = {row["gate"]: row for row in ledger.release_record(release_id)["gate_results"]}
    assert (rows["dr_runbook"]["verdict"], rows["dr_runbook"]["attested_by"]) == ("attested", "Sam")
    assert rows["dr_runbook"]["measured_value"] is None and rows["dr_runbook"]["measured_text"] is None
    assert (rows["odd_gate"]["measured_value"], rows["odd_gate"]["measured_text"]) == (None, "n/a")


def test_same_try_twice_writes_one_row(ledger, release_id):
    record_release(ledger, release_id)
    record_each(ledger, release_id, WRITER)
    record_each(ledger, release_id, WRITER)
    assert counts(ledger, release_id) == dict.fromkeys(RECORD_TABLES, 1)


def test_retry_adds_a_row_and_keeps_the_first(ledger, release_id):
    record_each(ledger, release_id, WRITER)
    record_each(ledger, release_id, replace(WRITER, try_number=2))
    record = ledger.release_record(release_id)
    expected = dict.fromkeys(RECORD_TABLES, 2)
    expected["releases"] = 1  # one release row per release, whichever try writes it
    assert {table: len(rows) for table, rows in record.items()} == expected
    for table in RECORD_TABLES[1:]:
        assert sorted(row["try_number"] for row in record[table]) == [1, 2], table


def test_one_try_keeps_its_shift_and_its_breach_switch(ledger, release_id):
    """A step's task shifts, then its window's trigger takes traffic off green for the same try: both are kept; a
    change repeated with its reason writes nothing new."""
    for reason, before, after in [("step 20%", (100, 0), (80, 20)), ("breach", (80, 20), (100, 0)),
                                  ("breach", (80, 20), (100, 0))]:
        ledger.record_traffic_change(release_id, reason=reason, before=before, after=after, router="nginx",
                                     writer=WRITER)
    changes = ledger.release_record(release_id)["traffic_changes"]
    assert [(c["reason"], c["green_after"], c["try_number"]) for c in changes] == [("step 20%", 20, 1),
                                                                                ("breach", 0, 1)]


def test_keying_traffic_changes_by_reason_keeps_what_was_recorded_before(fresh_ledger, monkeypatch):
    """Migration 019 rebuilds the table on SQLite (and changes the key in place on PostgreSQL): the changes written
    before it are all there after it, and the table is still append-only."""
    import sap_llm_release.ledger as ledger_module

    every = ledger_module.migrations
    monkeypatch.setattr(ledger_module, "migrations", lambda dialect: [m for m in every(dialect) if m[0] < "019"])
    fresh_ledger.migrate()
    release_id = f"rel-{uuid.uuid4().hex[:10]}"
    record_release(fresh_ledger, release_id)
    fresh_ledger.record_traffic_change(release_id, reason="step 5%", before=(100, 0), after=(95, 5), router="nginx",
                                       writer=WRITER)
    monkeypatch.undo()
    assert fresh_ledger.migrate() == ["019_traffic_changes_keyed_by_reason"]
    assert [c["reason"] for c in fresh_ledger.release_record(release_id)["traffic_changes"]] == ["step 5%"]
    with pytest.raises(DBAPIError, match="append-only"):
        with fresh_ledger.engine.begin() as conn:
            conn.execute(text("DELETE FROM traffic_changes"))


def test_record_for_unknown_release_is_refused(ledger):
    with pytest.raises(IntegrityError):
        ledger.record_event("no-such-release", "started", "", WRITER)


@pytest.mark.parametrize("table", RECORD_TABLES)
def test_record_tables_refuse_update_and_delete(ledger, release_id, table):
    record_each(ledger, release_id, WRITER)
    with pytest.raises(DBAPIError, match="append-only"):
        with ledger.engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET release_id = release_id WHERE release_id = :r"), {"r": release_id})
    with pytest.raises(DBAPIError, match="append-only"):
        with ledger.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {table} WHERE release_id = :r"), {"r": release_id})
    assert counts(ledger, release_id)[table] == 1


def test_gate_verdicts_are_the_latest_try(ledger, release_id):
    def gate(verdict: Verdict, measured: float, try_number: int, name: str = "dr_rto") -> None:
        ledger.record_gate(
            release_id,
            gate=name,
            phase="preflight",
            kind="report_metric",
            evidence=Evidence(verdict, measured, "< 60 min"),
            writer=replace(WRITER, try_number=try_number),
        )

    gate(Verdict.PASSED, 42, 2)  # written out of order: try 2 before try 1
    gate(Verdict.FAILED, 75, 1)
    gate(Verdict.FAILED, 9, 1, name="dr_rpo")
    verdicts = ledger.gate_verdicts(release_id)
    assert sorted(verdicts) == ["dr_rpo", "dr_rto"]
    assert (verdicts["dr_rto"]["verdict"], verdicts["dr_rto"]["try_number"], verdicts["dr_rto"]["measured_value"]) == (
        "passed",
        2,
        42.0,
    )
    assert verdicts["dr_rpo"]["verdict"] == "failed"
    assert ledger.gate_verdicts("another-release") == {}


# -- environment lock ----------------------------------------------------------------------------------------------


def test_environment_lock(ledger):
    first, second = f"rel-{uuid.uuid4().hex[:8]}", f"rel-{uuid.uuid4().hex[:8]}"
    ledger.acquire_environment("production", first)
    assert ledger.environment_holder("production")["release_id"] == first

    with pytest.raises(EnvironmentLocked, match=f"environment 'production' is held by release {first} since"):
        ledger.acquire_environment("production", second)
    assert ledger.environment_holder("production")["release_id"] == first

    ledger.acquire_environment("production", first)  # the holder may take it again (a retried task)
    ledger.acquire_environment("staging", second)  # other environments are independent
    assert ledger.environment_holder("staging")["release_id"] == second

    ledger.release_environment("production", second)  # not the holder: nothing happens
    assert ledger.environment_holder("production")["release_id"] == first

    ledger.release_environment("production", first)
    assert ledger.environment_holder("production") is None
    ledger.acquire_environment("production", second)
    assert ledger.environment_holder("production")["release_id"] == second


def test_each_test_has_its_own_database(request, ledger):
    backend = request.node.callspec.params["fresh_ledger"]
    assert ledger.dialect == backend
    assert sqlalchemy.inspect(ledger.engine).has_table("environment_locks")
    if backend == "postgresql":
        with ledger.engine.connect() as conn:
            schema = conn.execute(sqlalchemy.text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("ledger_")
        assert sqlalchemy.inspect(ledger.engine).get_table_names(schema="public") == []


def test_blue_slot_of_an_unknown_release_is_an_error(ledger):
    with pytest.raises(LedgerError, match="release nowhere is not in the ledger"):
        ledger.blue_slot("nowhere")


def test_approval_request_is_the_latest_try(ledger, release_id):
    assert ledger.approval_request(release_id, "go_live") is None
    record_each(ledger, release_id, WRITER)
    record_each(ledger, release_id, Writer(WRITER.dag_id, WRITER.run_id, WRITER.task_id, WRITER.try_number + 1))
    request = ledger.approval_request(release_id, "go_live")
    assert (request["try_number"], request["slack_ts"], json.loads(request["evidence"])) == (
        WRITER.try_number + 1, "1700000000.000001", ["smoke_green: 4 passed"])


def test_the_first_claim_on_an_approval_request_holds_it(ledger, release_id):
    assert ledger.approval_claim(release_id, "go_live", 1) is None
    won, first = ledger.claim_approval(release_id, approval="go_live", try_number=1, decision="rejected",
                                  decided_by="slack:U0MLLEAD01", channel="slack",
                                  answer="Reject by sam (Slack U0MLLEAD01)", request_sha256="ab" * 32)
    lost, second = ledger.claim_approval(release_id, approval="go_live", try_number=1, decision="timed_out",
                                         decided_by="system", channel="system", answer="no answer within the timeout")
    assert (won, lost) == (True, False)
    assert first == second == ledger.approval_claim(release_id, "go_live", 1)
    assert (second["decision"], second["decided_by"], second["request_sha256"]) == (
        "rejected", "slack:U0MLLEAD01", "ab" * 32)
    _, retry = ledger.claim_approval(release_id, approval="go_live", try_number=2, decision="approved",
                                  decided_by="bob", channel="airflow", answer="Approve by bob")
    assert (retry["try_number"], retry["decided_by"]) == (2, "bob")  # a new try of the approval is a new request


def test_racing_claims_on_one_approval_request_have_one_winner(ledger, release_id):
    """Many connections claim at the same moment: every one of them is told the same holder."""
    import threading

    barrier = threading.Barrier(8)
    held: list[tuple[bool, dict]] = []

    def claim(index: int) -> None:
        barrier.wait()
        held.append(ledger.claim_approval(release_id, approval="go_live", try_number=1, decision="approved",
                                          decided_by=f"slack:U0USER{index:04d}", channel="slack",
                                          answer=f"Approve by user {index}"))

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(held) == 8 and [won for won, _ in held].count(True) == 1
    winner = next(row for won, row in held if won)
    assert all(row == winner for _, row in held)
    assert len(ledger.release_record(release_id)["approval_claims"]) == 1


AUDIT_RUN = "sap_llm_audit_daily:scheduled__2026-11-29T06:00:00+00:00"
AUDIT_TABLES = ("audit_runs", "audit_findings", "audit_outcomes", "audit_notifications", "audit_job_results")


def record_audit(ledger, audit_run_id=AUDIT_RUN, writer=WRITER, period_end="2026-11-29T00:00:00+00:00",
                 measured=0.002):
    from datetime import date, datetime

    from sap_llm_release.audits.model import Finding, Severity

    end = datetime.fromisoformat(period_end)
    ledger.record_audit_run(audit_run_id, audit="daily", service="sap-llm", period_start=end.replace(day=end.day - 1),
                            period_end=end, triggered_by="scheduler", spec_digest="abc", writer=writer)
    ledger.record_audit_finding(audit_run_id, Finding(
        check="error_rate", kind="slo_series", severity=Severity.OK, measured=measured, threshold="< 0.01",
        detail="worst hour", day=date(2026, 11, 28), breakdown={"gpu": 0.001}), writer)
    ledger.record_audit_outcome(audit_run_id, severity="ok", counts={"ok": 1, "warning": 0, "critical": 0},
                                report_uri="file:///reports/daily/index.html", writer=writer)
    ledger.record_audit_notification(audit_run_id, channel="slack", kind="summary", dedup_key="daily", sent=True,
                                     detail="daily audit: ok", writer=writer)
    ledger.record_audit_job_result(audit_run_id, replace(JOB_OUTCOME, job="accuracy_review"), writer)


def test_an_audit_run_its_findings_and_outcome_are_recorded_once_per_try(ledger):
    record_audit(ledger)
    record_audit(ledger)  # a retried write of the same try
    record_audit(ledger, writer=replace(WRITER, try_number=2), measured=0.003)

    assert str(ledger.audit_run(AUDIT_RUN)["period_start"]).startswith("2026-11-28")
    (finding,) = ledger.audit_findings(AUDIT_RUN)
    assert (finding["check_name"], finding["severity"], finding["measured_value"], finding["finding_day"],
            finding["try_number"]) == ("error_rate", "ok", 0.003, "2026-11-28", 2)
    assert json.loads(finding["breakdown_json"]) == {"gpu": 0.001}
    assert ledger.audit_outcome(AUDIT_RUN)["report_uri"] == "file:///reports/daily/index.html"
    assert [(n["channel"], n["status"], n["try_number"]) for n in ledger.audit_notifications(AUDIT_RUN)] == [
        ("slack", "sent", 1), ("slack", "sent", 2)]
    (listed,) = ledger.audit_runs("daily")
    assert (listed["audit_run_id"], listed["severity"]) == (AUDIT_RUN, "ok")


def test_an_audits_job_results_are_its_own_and_the_latest_usable_try_wins(ledger, release_id):
    record_audit(ledger)
    assert ledger.audit_job_result(AUDIT_RUN, "accuracy_review") == json.loads(JOB_OUTCOME.result_text)
    retried = replace(JOB_OUTCOME, job="accuracy_review", result_text='{"passed": false}', exit_code=1)
    ledger.record_audit_job_result(AUDIT_RUN, retried, replace(WRITER, try_number=2))
    crashed = replace(JOB_OUTCOME, job="accuracy_review", result_text=None, exit_code=137)
    ledger.record_audit_job_result(AUDIT_RUN, crashed, replace(WRITER, try_number=3))
    assert ledger.audit_job_result(AUDIT_RUN, "accuracy_review") == {"passed": False}
    assert ledger.audit_job_result(AUDIT_RUN, "model_evaluation") is None
    assert ledger.job_result(release_id, "accuracy_review") is None  # a release's record holds none of it


def test_an_audits_job_results_over_a_period_are_each_runs_latest(ledger):
    from datetime import datetime

    for day in (20, 27):
        run = f"weekly:{day}"
        record_audit(ledger, run, period_end=f"2026-11-{day}T00:00:00+00:00")
        ledger.record_audit_job_result(run, replace(JOB_OUTCOME, job="accuracy_review",
                                                    result_text=f'{{"passed": true, "day": {day}}}'),
                                       replace(WRITER, try_number=2))
    found = ledger.audit_job_results_between("daily", "accuracy_review", datetime.fromisoformat(
        "2026-11-01T00:00:00+00:00"), datetime.fromisoformat("2026-11-27T00:00:00+00:00"))
    assert [(end[:10], result.get("day")) for end, result in found] == [("2026-11-20", 20), ("2026-11-27", 27)]
    assert ledger.audit_job_results_between("weekly", "accuracy_review", datetime.fromisoformat(
        "2026-11-01T00:00:00+00:00"), datetime.fromisoformat("2026-12-01T00:00:00+00:00")) == []


def test_the_promoted_version_is_the_last_promoted_before_a_moment(ledger):
    from datetime import datetime, timedelta, timezone

    assert ledger.promoted_version("sap-llm", datetime.now(timezone.utc)) is None
    record_release(ledger, "rel-a")
    ledger.record_event("rel-a", "promoted", "serves 100%", WRITER)
    between = datetime.now(timezone.utc)
    record_release(ledger, "rel-b", version="2.1.0")
    ledger.record_event("rel-b", "rolled_back", "rolled back to blue", WRITER)
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert ledger.promoted_version("sap-llm", later) == ledger.promoted_version("sap-llm", between) == "2.0.0"
    record_release(ledger, "rel-c", version="2.2.0")
    ledger.record_event("rel-c", "promoted", "serves 100%", WRITER)
    assert ledger.promoted_version("sap-llm", later + timedelta(seconds=1)) == "2.2.0"
    assert ledger.promoted_version("sap-llm", between) == "2.0.0"
    assert ledger.promoted_version("other", later) is None


def test_a_checks_history_is_the_earlier_runs_oldest_first(ledger):
    from datetime import datetime

    for day, measured in ((26, 0.001), (27, 0.002), (28, 0.004)):
        record_audit(ledger, f"daily:{day}", period_end=f"2026-11-{day}T00:00:00+00:00", measured=measured)
    history = ledger.audit_check_history("daily", "error_rate", before=datetime.fromisoformat(
        "2026-11-28T00:00:00+00:00"))
    assert [row["measured_value"] for row in history] == [0.001, 0.002]


@pytest.mark.parametrize("table", AUDIT_TABLES)
def test_audit_tables_refuse_update_and_delete(ledger, table):
    record_audit(ledger)
    for statement in (f"UPDATE {table} SET audit_run_id = audit_run_id", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"):
            with ledger.engine.begin() as conn:
                conn.execute(text(statement))


def test_a_periods_releases_outcomes_approvals_and_rollbacks_are_read_back(ledger):
    from datetime import datetime, timedelta, timezone

    before = datetime.now(timezone.utc) - timedelta(seconds=1)
    record_release(ledger, "rel-a")
    record_each(ledger, "rel-a", WRITER)
    ledger.record_event("rel-a", "rolled_back", "rolled back to blue", WRITER)
    record_release(ledger, "rel-b")
    ledger.record_event("rel-b", "promoted", "2.0.0 serves 100%", WRITER)
    after = datetime.now(timezone.utc) + timedelta(seconds=1)

    assert [r["release_id"] for r in ledger.releases_recorded_between(before, after, "sap-llm")] == ["rel-a", "rel-b"]
    assert ledger.releases_recorded_between(after, after + timedelta(days=1), "sap-llm") == []
    assert ledger.releases_recorded_between(before, after, "other") == []
    ended = ledger.releases_ended_between(before, after, "sap-llm", ("rolled_back",))
    assert [(r["release_id"], r["outcome"]) for r in ended] == [("rel-a", "rolled_back")]
    assert ledger.release_outcome("rel-a")["event"] == "rolled_back"  # its "started" event is no outcome
    assert ledger.release_outcome("rel-missing") is None
    assert [(a["gate"], a["decided_by"]) for a in ledger.approvals("rel-a")] == [("go_live", "bob")]
    assert [r["blue_healthy"] for r in ledger.rollbacks("rel-a")] == [1]
    (rollback,) = ledger.rollbacks_completed_between(before, after, "sap-llm")
    assert (rollback["release_id"], rollback["cause"]) == ("rel-a", "SLO error_rate failed")
    assert ledger.rollbacks_completed_between(before, after, "other") == []
