"""The release ledger: an append-only SQL record over the numbered migrations in ``sql/``.

Every write names the Airflow run, task and try that made it and is keyed so that repeating the same try
writes nothing new, while a retry (a new try number) adds its own row next to the first.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import Engine

from sap_llm_release.audits.model import Finding
from sap_llm_release.evidence import Evidence
from sap_llm_release.jobs.base import JobOutcome
from sap_llm_release.recovery.backups import Backup
from sap_llm_release.recovery.drill import DrillCheck, DrillOutcome, RecordedBackup
from sap_llm_release.recovery.fingerprints import TableFingerprint
from sap_llm_release.timestamps import recorded_time

# the events finish_release records as a release's outcome (sap_llm_release.rollout.release_outcome)
RELEASE_OUTCOMES = ("promoted", "rolled_back", "rollback_failed", "failed")
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql"
_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)(?:\.(sqlite|postgresql))?\.sql$")


class LedgerError(RuntimeError):
    """The ledger refused a write or cannot be reached."""


class EnvironmentLocked(LedgerError):
    """Another release holds the environment."""


@dataclass(frozen=True)
class Writer:
    """The Airflow task try that writes a row."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat()


def migrations(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[tuple[str, Path]]:
    """The migrations for ``dialect`` in order: shared files plus the dialect's own variants."""
    chosen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise LedgerError(f"migration {path.name}: name must be NNN_name.sql or NNN_name.<dialect>.sql")
        number, name, only_for = match.groups()
        if only_for in (None, dialect):
            chosen[f"{number}_{name}"] = path
    return sorted(chosen.items())


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> list[str]:
        """Apply the migrations not yet applied; return their versions."""
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version TEXT NOT NULL PRIMARY KEY, applied_at TIMESTAMP WITH TIME ZONE NOT NULL)"
                )
            )
            done = {row[0] for row in conn.execute(text("SELECT version FROM schema_migrations"))}
        applied = []
        for version, path in migrations(self.dialect):
            if version in done:
                continue
            self._run_script(path.read_text())
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO schema_migrations (version, applied_at) VALUES (:v, :at) "
                        "ON CONFLICT (version) DO NOTHING"
                    ),
                    {"v": version, "at": utcnow()},
                )
            applied.append(version)
        return applied

    def _run_script(self, script: str) -> None:
        raw = self.engine.raw_connection()
        try:
            if self.dialect == "sqlite":
                raw.driver_connection.executescript(script)
            else:
                with raw.cursor() as cursor:
                    cursor.execute(script)
            raw.commit()
        finally:
            raw.close()

    def _insert(self, table: str, row: dict[str, Any]) -> bool:
        """Insert one row unless its key is already there; True when a row was written."""
        columns = ", ".join(row)
        values = ", ".join(f":{name}" for name in row)
        statement = text(f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING")
        with self.engine.begin() as conn:
            return conn.execute(statement, row).rowcount == 1

    def _record(self, table: str, release_id: str, writer: Writer, *, stamped: str = "recorded_at",
                **fields: Any) -> bool:
        """One row of a release's record: its fields, the task try that wrote it, and the time in ``stamped``."""
        return self._insert(table, {"release_id": release_id, **fields, **self._by(writer), stamped: utcnow()})

    @staticmethod
    def _by(writer: Writer) -> dict[str, Any]:
        return {
            "dag_id": writer.dag_id,
            "run_id": writer.run_id,
            "task_id": writer.task_id,
            "try_number": writer.try_number,
        }

    def record_release(
        self,
        release_id: str,
        *,
        service: str,
        environment: str,
        version: str,
        profile: str,
        triggered_by: str,
        spec_digest: str,
        blue_slot: str,
        writer: Writer,
    ) -> None:
        self._insert(
            "releases",
            {
                "release_id": release_id,
                "service": service,
                "environment": environment,
                "version": version,
                "profile": profile,
                "triggered_by": triggered_by,
                "spec_digest": spec_digest,
                "blue_slot": blue_slot,
                "dag_id": writer.dag_id,
                "run_id": writer.run_id,
                "recorded_at": utcnow(),
            },
        )

    def record_event(self, release_id: str, event_name: str, detail: str, writer: Writer) -> None:
        self._record(
            "release_events", release_id, writer,
            event=event_name,
            detail=detail,
        )

    def record_gate(
        self, release_id: str, *, gate: str, phase: str, kind: str, evidence: Evidence, writer: Writer
    ) -> None:
        measured = evidence.measured
        numeric = isinstance(measured, (int, float)) and not isinstance(measured, bool)
        self._record(
            "gate_results", release_id, writer,
            gate=gate,
            phase=phase,
            kind=kind,
            verdict=evidence.verdict.value,
            measured_value=float(measured) if numeric else None,
            measured_text=None if numeric or measured is None else str(measured),
            threshold=evidence.threshold,
            detail=evidence.detail,
            evidence_uri=evidence.evidence_uri,
            attested_by=evidence.extra.get("attested_by"),
        )

    def record_slo_window(
        self,
        release_id: str,
        *,
        step: str,
        green_weight: int,
        verdict: str,
        reason: str,
        window_seconds: float,
        checks: list[dict[str, Any]],
        started_at: str,
        writer: Writer,
    ) -> None:
        self._record(
            "slo_windows", release_id, writer,
            step=step,
            green_weight=green_weight,
            verdict=verdict,
            reason=reason,
            window_seconds=window_seconds,
            checks_json=json.dumps(checks, sort_keys=True),
            started_at=started_at,
        )

    def record_traffic_change(
        self,
        release_id: str,
        *,
        reason: str,
        before: tuple[int, int],
        after: tuple[int, int],
        router: str,
        writer: Writer,
    ) -> None:
        self._record(
            "traffic_changes", release_id, writer, stamped="changed_at",
            reason=reason,
            blue_before=before[0],
            green_before=before[1],
            blue_after=after[0],
            green_after=after[1],
            router=router,
        )

    def record_rollback(
        self,
        release_id: str,
        *,
        cause: str,
        blue_weight_after: int,
        green_removed: bool,
        blue_healthy: bool,
        detail: str,
        started_at: str,
        writer: Writer,
    ) -> None:
        self._record(
            "rollbacks", release_id, writer, stamped="completed_at",
            cause=cause,
            blue_weight_after=blue_weight_after,
            green_removed=int(green_removed),
            blue_healthy=int(blue_healthy),
            detail=detail,
            started_at=started_at,
        )

    def record_lost_requests(self, release_id: str, *, window: tuple[datetime, datetime], source: str,
                             requests: int | None, lost: int | None, max_lost: int, passed: bool, detail: str,
                             writer: Writer) -> bool:
        """What the router answered while a rollback switched traffic (None: its log could not be read)."""
        return self._record(
            "rollback_lost_requests", release_id, writer,
            window_start=window[0].isoformat(), window_end=window[1].isoformat(), source=source,
            requests=requests, lost=lost, max_lost=max_lost, verdict="passed" if passed else "failed", detail=detail)

    def record_approval(
        self, release_id: str, *, gate: str, decision: str, decided_by: str, channel: str, detail: str, writer: Writer
    ) -> None:
        self._record(
            "approvals", release_id, writer,
            gate=gate,
            decision=decision,
            decided_by=decided_by,
            channel=channel,
            detail=detail,
        )

    def record_approval_request(self, release_id: str, *, approval: str, point: str, map_index: int,
                                slack_channel: str | None, slack_ts: str | None, evidence: list[str],
                                deadline: str, writer: Writer) -> None:
        self._record(
            "approval_requests", release_id, writer, stamped="opened_at",
            approval=approval,
            point=point,
            map_index=map_index,
            slack_channel=slack_channel,
            slack_ts=slack_ts,
            evidence=json.dumps(evidence),
            deadline=deadline,
        )

    def approval_request(self, release_id: str, approval: str) -> dict[str, Any] | None:
        """The latest try's request for ``approval`` in ``release_id``, or None when it was never opened."""
        rows = self._rows("SELECT * FROM approval_requests WHERE release_id = :r AND approval = :a "
                          "ORDER BY try_number DESC LIMIT 1", r=release_id, a=approval)
        return rows[0] if rows else None

    def claim_approval(self, release_id: str, *, approval: str, try_number: int, decision: str, decided_by: str,
                       channel: str, answer: str, request_sha256: str | None = None) -> tuple[bool, dict[str, Any]]:
        """Claim the right to answer one approval request (its try): ``(True, this claim)`` when this insert made
        it, else ``(False, the claim that holds it)``. One insert against the primary key decides, on SQLite and on
        PostgreSQL alike."""
        won = self._insert(
            "approval_claims",
            {
                "release_id": release_id,
                "approval": approval,
                "try_number": try_number,
                "decision": decision,
                "decided_by": decided_by,
                "channel": channel,
                "answer": answer,
                "request_sha256": request_sha256,
                "claimed_at": utcnow(),
            },
        )
        held = self.approval_claim(release_id, approval, try_number)
        if held is None:
            raise LedgerError(f"claim on {approval} of {release_id} (try {try_number}) neither written nor found")
        return won, held

    def approval_claim(self, release_id: str, approval: str, try_number: int) -> dict[str, Any] | None:
        """The claim on one approval request, or None while nobody answered it."""
        rows = self._rows("SELECT * FROM approval_claims WHERE release_id = :r AND approval = :a AND try_number = :t",
                          r=release_id, a=approval, t=try_number)
        return rows[0] if rows else None

    def record_notification(
        self, release_id: str, *, channel: str, kind: str, dedup_key: str, status: str, detail: str, writer: Writer
    ) -> None:
        self._record(
            "notifications", release_id, writer,
            channel=channel,
            kind=kind,
            dedup_key=dedup_key,
            status=status,
            detail=detail,
        )

    def record_job_result(self, release_id: str, outcome: JobOutcome, writer: Writer) -> None:
        """An inference job's result JSON exactly as its entrypoint wrote it, with its digest."""
        self._record("job_results", release_id, writer, **_job_outcome_columns(outcome))

    def job_result(self, release_id: str, job: str) -> dict[str, Any] | None:
        """The result of the latest try of ``job`` in ``release_id`` that wrote a JSON object, or None (``passed``
        is set exactly for those tries)."""
        rows = self._rows(
            "SELECT result_json FROM job_results WHERE release_id = :r AND job = :j AND passed IS NOT NULL "
            "ORDER BY try_number DESC, recorded_at DESC LIMIT 1", r=release_id, j=job,
        )
        return json.loads(rows[0]["result_json"]) if rows else None

    def record_slack_interaction(self, *, request_sha256: str, slack_timestamp: str, outcome: str, detail: str,
                                 release_id: str | None = None, approval: str | None = None,
                                 slack_user: str | None = None) -> bool:
        """One request to the Slack callback; False when the same request was recorded before (a replay)."""
        return self._insert(
            "slack_interactions",
            {
                "request_sha256": request_sha256,
                "slack_timestamp": slack_timestamp,
                "release_id": release_id,
                "approval": approval,
                "slack_user": slack_user,
                "outcome": outcome,
                "detail": detail,
                "received_at": utcnow(),
            },
        )

    def acquire_environment(self, environment: str, release_id: str) -> None:
        """Take the environment for ``release_id``; raise :class:`EnvironmentLocked` if another release has it."""
        self._insert(
            "environment_locks", {"environment": environment, "release_id": release_id, "acquired_at": utcnow()}
        )
        holder = self.environment_holder(environment)
        if holder and holder["release_id"] != release_id:
            raise EnvironmentLocked(
                f"environment {environment!r} is held by release {holder['release_id']} since "
                f"{holder['acquired_at']}; one release per environment at a time"
            )

    def release_environment(self, environment: str, release_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM environment_locks WHERE environment = :e AND release_id = :r"),
                {"e": environment, "r": release_id},
            )

    def environment_holder(self, environment: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM environment_locks WHERE environment = :e", e=environment)
        return rows[0] if rows else None

    def _rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(query), params)]

    def blue_slot(self, release_id: str) -> str:
        """Which slot served production when ``release_id`` started."""
        rows = self._rows("SELECT blue_slot FROM releases WHERE release_id = :r", r=release_id)
        if not rows:
            raise LedgerError(f"release {release_id} is not in the ledger")
        return rows[0]["blue_slot"]

    def release(self, release_id: str) -> dict[str, Any] | None:
        """The release's own record (who triggered it, version, environment, blue slot), or None."""
        rows = self._rows("SELECT * FROM releases WHERE release_id = :r", r=release_id)
        return rows[0] if rows else None

    def latest_event(self, release_id: str) -> dict[str, Any] | None:
        """The release's most recent event, or None while it has none."""
        rows = self._rows("SELECT * FROM release_events WHERE release_id = :r ORDER BY recorded_at DESC LIMIT 1",
                          r=release_id)
        return rows[0] if rows else None

    def slo_windows(self, release_id: str, verdict: str | None = None) -> list[dict[str, Any]]:
        """The release's SLO windows in the order they were recorded (only those with ``verdict`` when given)."""
        rows = self._rows("SELECT * FROM slo_windows WHERE release_id = :r ORDER BY recorded_at", r=release_id)
        return [row for row in rows if verdict is None or row["verdict"] == verdict]

    def latest_traffic_change(self, release_id: str) -> dict[str, Any] | None:
        """The release's most recent traffic change, or None while traffic was never touched."""
        rows = self._rows("SELECT * FROM traffic_changes WHERE release_id = :r ORDER BY changed_at DESC LIMIT 1",
                          r=release_id)
        return rows[0] if rows else None

    def sent_notifications(self, release_id: str, channel: str) -> list[dict[str, Any]]:
        """The notifications delivered on ``channel`` (slack, pagerduty) for the release, oldest first."""
        return self._rows("SELECT * FROM notifications WHERE release_id = :r AND channel = :c AND status = 'sent' "
                          "ORDER BY recorded_at", r=release_id, c=channel)

    def approval_requests_opened_since(self, since: str) -> list[dict[str, Any]]:
        """Approval requests of any release opened at or after ``since`` (ISO time), oldest first."""
        return self._rows("SELECT * FROM approval_requests WHERE opened_at >= :t ORDER BY opened_at", t=since)

    def slo_windows_recorded_since(self, since: str) -> list[dict[str, Any]]:
        """SLO windows of any release recorded after ``since`` (ISO time), oldest first."""
        return self._rows("SELECT * FROM slo_windows WHERE recorded_at > :t ORDER BY recorded_at", t=since)

    def slack_interactions(self, release_id: str | None = None) -> list[dict[str, Any]]:
        """Requests to the Slack callback (of one release, or all, unsigned ones included) in arrival order."""
        if release_id is None:
            return self._rows("SELECT * FROM slack_interactions ORDER BY received_at")
        return self._rows("SELECT * FROM slack_interactions WHERE release_id = :r ORDER BY received_at", r=release_id)

    def applied_migrations(self) -> list[str]:
        """The versions of the ``sql/`` migrations applied, in order."""
        return [row["version"] for row in self._rows("SELECT version FROM schema_migrations ORDER BY version")]

    def slack_request_seen(self, request_sha256: str) -> bool:
        """Whether this exact Slack request (its digest) was received before."""
        return bool(self._rows("SELECT 1 FROM slack_interactions WHERE request_sha256 = :d", d=request_sha256))

    def gate_verdicts(self, release_id: str) -> dict[str, dict[str, Any]]:
        """The latest try's result of every gate recorded for ``release_id``."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self._rows("SELECT * FROM gate_results WHERE release_id = :r ORDER BY try_number", r=release_id):
            latest[row["gate"]] = row
        return latest

    def releases_recorded_between(self, start: datetime, end: datetime, service: str) -> list[dict[str, Any]]:
        """The releases of ``service`` that started in [start, end), oldest first."""
        return self._rows("SELECT * FROM releases WHERE service = :s AND recorded_at >= :start AND recorded_at < :end"
                          " ORDER BY recorded_at", s=service, start=start.isoformat(), end=end.isoformat())

    def releases_ended_between(self, start: datetime, end: datetime, service: str,
                               outcomes: tuple[str, ...] = RELEASE_OUTCOMES) -> list[dict[str, Any]]:
        """The releases of ``service`` whose outcome (one of ``outcomes``) was recorded in [start, end), oldest
        first, each with ``outcome``, ``outcome_detail`` and ``ended_at``."""
        query = text(
            "SELECT r.*, e.event AS outcome, e.detail AS outcome_detail, e.recorded_at AS ended_at"
            " FROM releases r JOIN release_events e ON e.release_id = r.release_id"
            " WHERE r.service = :s AND e.event IN :outcomes AND e.recorded_at >= :start AND e.recorded_at < :end"
            " ORDER BY e.recorded_at").bindparams(bindparam("outcomes", expanding=True))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query, {
                "s": service, "outcomes": list(outcomes), "start": start.isoformat(), "end": end.isoformat()})]

    def promoted_version(self, service: str, before: datetime) -> str | None:
        """The version of ``service`` last promoted before ``before`` (what serves now, absent a rollback since:
        a rollback returns to the version promoted before it), or None when none was."""
        rows = self._rows(
            "SELECT r.version FROM releases r JOIN release_events e ON e.release_id = r.release_id"
            " WHERE r.service = :s AND e.event = 'promoted' AND e.recorded_at < :before"
            " ORDER BY e.recorded_at DESC LIMIT 1", s=service, before=before.isoformat())
        return rows[0]["version"] if rows else None

    def release_outcome(self, release_id: str) -> dict[str, Any] | None:
        """The release's latest outcome event (promoted, rolled_back, rollback_failed, failed), or None."""
        query = text("SELECT * FROM release_events WHERE release_id = :r AND event IN :outcomes"
                     " ORDER BY recorded_at DESC LIMIT 1").bindparams(bindparam("outcomes", expanding=True))
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query, {"r": release_id,
                                                                       "outcomes": list(RELEASE_OUTCOMES)})]
        return rows[0] if rows else None

    def approvals(self, release_id: str) -> list[dict[str, Any]]:
        """Every approval decision recorded for the release, oldest first."""
        return self._rows("SELECT * FROM approvals WHERE release_id = :r ORDER BY recorded_at", r=release_id)

    def rollbacks(self, release_id: str) -> list[dict[str, Any]]:
        """Every rollback of the release (one per try), oldest first."""
        return self._rows("SELECT * FROM rollbacks WHERE release_id = :r ORDER BY completed_at", r=release_id)

    def rollbacks_completed_between(self, start: datetime, end: datetime, service: str) -> list[dict[str, Any]]:
        """The rollbacks of ``service``'s releases completed in [start, end), oldest first, each with its
        release's ``recorded_at`` as ``release_started_at``."""
        return self._rows(
            "SELECT b.*, r.recorded_at AS release_started_at FROM rollbacks b"
            " JOIN releases r ON r.release_id = b.release_id"
            " WHERE r.service = :s AND b.completed_at >= :start AND b.completed_at < :end ORDER BY b.completed_at",
            s=service, start=start.isoformat(), end=end.isoformat())

    def release_dag_ids(self) -> list[str]:
        """Every DAG that has recorded a release."""
        return [row["dag_id"] for row in self._rows("SELECT DISTINCT dag_id FROM releases ORDER BY dag_id")]

    def recent_releases(self, limit: int = 20, dag_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` releases (of ``dag_ids`` only, when given) first, each with its latest event as
        ``outcome`` (None while none is recorded)."""
        if dag_ids is not None and not dag_ids:
            return []
        query = text("SELECT * FROM releases" + (" WHERE dag_id IN :dags" if dag_ids is not None else "")
                     + " ORDER BY recorded_at DESC LIMIT :limit")
        params: dict[str, Any] = {"limit": int(limit)}
        if dag_ids is not None:
            query = query.bindparams(bindparam("dags", expanding=True))
            params["dags"] = sorted(dag_ids)
        with self.engine.connect() as conn:
            releases = [dict(row._mapping) for row in conn.execute(query, params)]
        latest: dict[str, dict[str, Any]] = {}
        if releases:
            query = text(
                "SELECT release_id, event, detail FROM release_events WHERE release_id IN :ids ORDER BY recorded_at"
            ).bindparams(bindparam("ids", expanding=True))
            with self.engine.connect() as conn:
                for row in conn.execute(query, {"ids": [r["release_id"] for r in releases]}):
                    latest[row.release_id] = {"event": row.event, "detail": row.detail}
        for release in releases:
            event = latest.get(release["release_id"], {"event": None, "detail": ""})
            release["outcome"], release["outcome_detail"] = event["event"], event["detail"]
        return releases

    def release_record(self, release_id: str) -> dict[str, list[dict[str, Any]]]:
        """Everything the ledger holds about one release, table by table, in time order."""
        order = {
            "releases": "recorded_at",
            "release_events": "recorded_at",
            "gate_results": "recorded_at",
            "slo_windows": "recorded_at",
            "approval_requests": "opened_at",
            "approval_claims": "claimed_at",
            "approvals": "recorded_at",
            "traffic_changes": "changed_at",
            "rollbacks": "completed_at",
            "rollback_lost_requests": "recorded_at",
            "notifications": "recorded_at",
            "job_results": "recorded_at",
        }
        return {
            table: self._rows(f"SELECT * FROM {table} WHERE release_id = :r ORDER BY {column}", r=release_id)
            for table, column in order.items()
        }

    # Scheduled audits (sql/011_audits.sql): a run, each check's finding, the run's outcome.

    def record_audit_run(self, audit_run_id: str, *, audit: str, service: str, period_start: datetime,
                         period_end: datetime, triggered_by: str, spec_digest: str, writer: Writer) -> bool:
        return self._insert("audit_runs", {
            "audit_run_id": audit_run_id, "audit": audit, "service": service,
            "period_start": period_start.isoformat(), "period_end": period_end.isoformat(),
            "triggered_by": triggered_by, "spec_digest": spec_digest, **self._by(writer), "recorded_at": utcnow()})

    def record_audit_finding(self, audit_run_id: str, finding: Finding, writer: Writer) -> bool:
        return self._insert("audit_findings", {
            "audit_run_id": audit_run_id, "check_name": finding.check, "kind": finding.kind,
            "severity": finding.severity.value, "measured_value": finding.measured, "threshold": finding.threshold,
            "detail": finding.detail, "finding_day": finding.day.isoformat() if finding.day else None,
            "evidence_uri": finding.evidence_uri, "breakdown_json": json.dumps(finding.breakdown),
            **self._by(writer), "recorded_at": utcnow()})

    def record_audit_outcome(self, audit_run_id: str, *, severity: str, counts: dict[str, int], report_uri: str,
                             writer: Writer) -> bool:
        return self._insert("audit_outcomes", {
            "audit_run_id": audit_run_id, "severity": severity, "counts_json": json.dumps(counts),
            "report_uri": report_uri, **self._by(writer), "recorded_at": utcnow()})

    def record_audit_notification(self, audit_run_id: str, *, channel: str, kind: str, dedup_key: str, sent: bool,
                                  detail: str, writer: Writer) -> bool:
        return self._insert("audit_notifications", {
            "audit_run_id": audit_run_id, "channel": channel, "kind": kind, "dedup_key": dedup_key,
            "status": "sent" if sent else "failed", "detail": detail, **self._by(writer), "recorded_at": utcnow()})

    def record_audit_job_result(self, audit_run_id: str, outcome: JobOutcome, writer: Writer) -> bool:
        """An audit's inference job result (sql/013_audit_job_results.sql), recorded as a release's is."""
        return self._insert("audit_job_results", {"audit_run_id": audit_run_id, **_job_outcome_columns(outcome),
                                                  **self._by(writer), "recorded_at": utcnow()})

    def audit_job_result(self, audit_run_id: str, job: str) -> dict[str, Any] | None:
        """The result of the latest try of an audit's ``job`` that wrote a JSON object, or None."""
        rows = self._rows(
            "SELECT result_json FROM audit_job_results WHERE audit_run_id = :a AND job = :j AND passed IS NOT NULL "
            "ORDER BY try_number DESC, recorded_at DESC LIMIT 1", a=audit_run_id, j=job,
        )
        return json.loads(rows[0]["result_json"]) if rows else None

    def audit_job_results_between(self, audit: str, job: str, start: datetime, end: datetime
                                  ) -> list[tuple[str, dict[str, Any]]]:
        """``(period_end, result)`` of each run of ``audit`` whose period ended in (start, end] and whose ``job``
        left a result (its latest such try), oldest first."""
        rows = self._rows(
            "SELECT r.audit_run_id, r.period_end, j.result_json FROM audit_job_results j"
            " JOIN audit_runs r ON r.audit_run_id = j.audit_run_id"
            " WHERE r.audit = :audit AND j.job = :job AND j.passed IS NOT NULL"
            " AND r.period_end > :start AND r.period_end <= :end ORDER BY r.period_end, j.try_number",
            audit=audit, job=job, start=start.isoformat(), end=end.isoformat())
        latest = {row["audit_run_id"]: (str(row["period_end"]), json.loads(row["result_json"])) for row in rows}
        return sorted(latest.values(), key=lambda found: found[0])

    def audit_notifications(self, audit_run_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM audit_notifications WHERE audit_run_id = :a ORDER BY recorded_at",
                          a=audit_run_id)

    def audit_run(self, audit_run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM audit_runs WHERE audit_run_id = :a", a=audit_run_id)
        return rows[0] if rows else None

    def audit_findings(self, audit_run_id: str) -> list[dict[str, Any]]:
        """The run's findings, the latest try of each check, in the order they were recorded."""
        rows = self._rows("SELECT * FROM audit_findings WHERE audit_run_id = :a ORDER BY recorded_at, try_number",
                          a=audit_run_id)
        latest = {row["check_name"]: row for row in rows}
        return sorted(latest.values(), key=lambda row: row["recorded_at"])

    def audit_outcome(self, audit_run_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM audit_outcomes WHERE audit_run_id = :a ORDER BY try_number DESC LIMIT 1",
                          a=audit_run_id)
        return rows[0] if rows else None

    def audit_check_history(self, audit: str, check: str, before: datetime, limit: int = 30) -> list[dict[str, Any]]:
        """Earlier runs' findings of ``check`` in ``audit`` whose period ended before ``before``, oldest first:
        ``period_end``, ``severity``, ``measured_value`` (the latest try of each run)."""
        rows = self._rows(
            "SELECT r.period_end, f.severity, f.measured_value, f.try_number, f.audit_run_id"
            " FROM audit_findings f JOIN audit_runs r ON r.audit_run_id = f.audit_run_id"
            " WHERE r.audit = :audit AND f.check_name = :check AND r.period_end < :before"
            " ORDER BY r.period_end DESC, f.try_number DESC",
            audit=audit, check=check, before=before.isoformat())
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:
            latest.setdefault(row["audit_run_id"], row)
        return sorted(latest.values(), key=lambda row: str(row["period_end"]))[-limit:]

    def audit_runs(self, audit: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent audit runs (of ``audit`` when given) with their outcome, newest first."""
        rows = self._rows(
            "SELECT r.*, o.severity, o.report_uri FROM audit_runs r"
            " LEFT JOIN audit_outcomes o ON o.audit_run_id = r.audit_run_id"
            " WHERE (CAST(:audit AS TEXT) IS NULL OR r.audit = :audit) ORDER BY r.period_end DESC, o.try_number DESC",
            audit=audit)
        newest: dict[str, dict[str, Any]] = {}
        for row in rows:
            newest.setdefault(row["audit_run_id"], row)
        return list(newest.values())[:limit]

    def record_backup(self, backup_id: str, service: str, backup: Backup, writer: Writer) -> bool:
        """A backup as taken: where it lies, its digest and the fingerprints of the tables it holds."""
        return self._insert("dr_backups", {
            "backup_id": backup_id, "service": service, "store": backup.store, "dialect": backup.dialect,
            "location": str(backup.path), "sha256": backup.sha256, "size_bytes": backup.size_bytes,
            "tables_json": json.dumps({name: fp.as_dict() for name, fp in backup.tables.items()}, sort_keys=True),
            "taken_at": backup.taken_at.isoformat(), **self._by(writer), "recorded_at": utcnow()})

    def newest_backup(self, service: str, store: str, before: datetime) -> RecordedBackup | None:
        """The newest backup of ``store`` taken before ``before``, or None."""
        rows = self._rows("SELECT * FROM dr_backups WHERE service = :s AND store = :store AND taken_at < :before"
                          " ORDER BY taken_at DESC LIMIT 1", s=service, store=store, before=before.isoformat())
        if not rows:
            return None
        row = rows[0]
        tables = {name: TableFingerprint(**fp) for name, fp in json.loads(row["tables_json"]).items()}
        return RecordedBackup(row["backup_id"], row["store"], row["dialect"], Path(row["location"]), row["sha256"],
                              recorded_time(row["taken_at"]), tables)

    def backups(self, service: str, store: str) -> list[dict[str, Any]]:
        """Every backup of ``store``, newest first."""
        return self._rows("SELECT * FROM dr_backups WHERE service = :s AND store = :store ORDER BY taken_at DESC",
                          s=service, store=store)

    def record_drill_check(self, drill_id: str, check: DrillCheck, backup_id: str | None, writer: Writer) -> bool:
        return self._insert("dr_drill_checks", {
            "drill_id": drill_id, "store": check.store, "subject": check.subject, "check_name": check.check,
            "backup_id": backup_id, "measured": check.measured, "expected": check.expected,
            "verdict": "passed" if check.passed else "failed", "detail": check.detail, **self._by(writer),
            "recorded_at": utcnow()})

    def record_drill(self, drill_id: str, *, service: str, started_at: datetime, outcome: DrillOutcome,
                     triggered_by: str, writer: Writer) -> bool:
        """A drill's outcome: its measured RTO and RPO (None where a store had no backup) and verdict."""
        return self._insert("dr_drills", {
            "drill_id": drill_id, "service": service, "started_at": started_at.isoformat(), "finished_at": utcnow(),
            "rto_seconds": outcome.rto_seconds, "rpo_seconds": outcome.rpo_seconds,
            "verdict": "passed" if outcome.passed else "failed", "detail": "; ".join(outcome.failures),
            "triggered_by": triggered_by, **self._by(writer), "recorded_at": utcnow()})

    def latest_drill(self, service: str) -> dict[str, Any] | None:
        """The most recent drill of ``service`` (its last try), or None."""
        rows = self._rows("SELECT * FROM dr_drills WHERE service = :s ORDER BY finished_at DESC LIMIT 1", s=service)
        return rows[0] if rows else None

    def drill_checks(self, drill_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM dr_drill_checks WHERE drill_id = :d ORDER BY store, subject, check_name",
                          d=drill_id)

    def append_only_tables(self) -> list[str]:
        """The ledger's tables that refuse UPDATE and DELETE (the ``*_append_only*`` triggers of ``sql/``)."""
        if self.dialect == "sqlite":
            query = ("SELECT DISTINCT tbl_name AS name FROM sqlite_master WHERE type = 'trigger'"
                     " AND name LIKE '%append_only%' ORDER BY tbl_name")
        else:
            query = ("SELECT DISTINCT event_object_table AS name FROM information_schema.triggers"
                     " WHERE trigger_name LIKE '%append_only%' ORDER BY event_object_table")
        return [row["name"] for row in self._rows(query)]

    def latest_completed_rollback(self, service: str) -> dict[str, Any] | None:
        """The newest rollback of ``service`` that left blue serving everything, healthy, and green removed: a
        rollback procedure proven end to end (a rehearsal's or a real one)."""
        rows = self._rows(
            "SELECT b.*, r.environment, r.version FROM rollbacks b JOIN releases r ON r.release_id = b.release_id"
            " WHERE r.service = :s AND b.blue_weight_after = 100 AND b.blue_healthy = 1 AND b.green_removed = 1"
            " ORDER BY b.completed_at DESC LIMIT 1", s=service)
        return rows[0] if rows else None


def _job_outcome_columns(outcome: JobOutcome) -> dict[str, Any]:
    """A job outcome's columns (job_results, audit_job_results): the result JSON as written, with its digest."""
    return {
        "job": outcome.job, "image": outcome.image, "command": outcome.command, "runner": outcome.runner,
        "exit_code": outcome.exit_code,
        "passed": None if outcome.result is None else bool(outcome.result.get("passed")),
        "result_json": outcome.result_text,
        "result_sha256": None if outcome.result_text is None
        else hashlib.sha256(outcome.result_text.encode()).hexdigest(),
        "detail": outcome.detail, "started_at": outcome.started_at, "finished_at": outcome.finished_at,
    }


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return create_engine(url, pool_pre_ping=True)
