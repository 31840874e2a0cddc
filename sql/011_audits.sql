-- Scheduled audits (checklist section 10): each run of an audit DAG, each check's finding, and the run's outcome
-- (report) and the notifications it sent. Append-only like the release record; every row names the Airflow task try that wrote it.

CREATE TABLE IF NOT EXISTS audit_runs (
    audit_run_id      TEXT NOT NULL PRIMARY KEY,
    audit             TEXT NOT NULL CHECK (audit IN ('daily', 'weekly', 'monthly')),
    service           TEXT NOT NULL,
    period_start      TIMESTAMP WITH TIME ZONE NOT NULL,
    period_end        TIMESTAMP WITH TIME ZONE NOT NULL,
    triggered_by      TEXT NOT NULL,
    spec_digest       TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_findings (
    audit_run_id      TEXT NOT NULL REFERENCES audit_runs (audit_run_id),
    check_name        TEXT NOT NULL,
    kind              TEXT NOT NULL,
    severity          TEXT NOT NULL CHECK (severity IN ('ok', 'warning', 'critical')),
    measured_value    DOUBLE PRECISION,
    threshold         TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL DEFAULT '',
    finding_day       TEXT,
    evidence_uri      TEXT NOT NULL DEFAULT '',
    breakdown_json    TEXT NOT NULL DEFAULT '{}',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (audit_run_id, check_name, try_number)
);

CREATE TABLE IF NOT EXISTS audit_outcomes (
    audit_run_id      TEXT NOT NULL REFERENCES audit_runs (audit_run_id),
    severity          TEXT NOT NULL CHECK (severity IN ('ok', 'warning', 'critical')),
    counts_json       TEXT NOT NULL,
    report_uri        TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (audit_run_id, try_number)
);

CREATE TABLE IF NOT EXISTS audit_notifications (
    audit_run_id      TEXT NOT NULL REFERENCES audit_runs (audit_run_id),
    channel           TEXT NOT NULL CHECK (channel IN ('slack', 'pagerduty')),
    kind              TEXT NOT NULL,
    dedup_key         TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('sent', 'failed')),
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (audit_run_id, channel, kind, try_number)
);
