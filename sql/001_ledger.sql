-- The release ledger: an append-only record of every release, what was checked, who decided and what changed.
-- Portable between SQLite and PostgreSQL. Every row names the Airflow run, task and try that wrote it; the
-- primary keys make a retried write of the same try a no-op (INSERT ... ON CONFLICT DO NOTHING).

CREATE TABLE IF NOT EXISTS releases (
    release_id        TEXT NOT NULL PRIMARY KEY,
    service           TEXT NOT NULL,
    environment       TEXT NOT NULL,
    version           TEXT NOT NULL,
    profile           TEXT NOT NULL,
    triggered_by      TEXT NOT NULL,
    spec_digest       TEXT NOT NULL,
    blue_slot         TEXT NOT NULL CHECK (blue_slot IN ('blue', 'green')),
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE TABLE IF NOT EXISTS release_events (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    event             TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, event, task_id, try_number)
);

CREATE TABLE IF NOT EXISTS gate_results (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    gate              TEXT NOT NULL,
    phase             TEXT NOT NULL,
    kind              TEXT NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('passed', 'failed', 'attested', 'waived')),
    measured_value    DOUBLE PRECISION,
    measured_text     TEXT,
    threshold         TEXT NOT NULL DEFAULT '',
    detail            TEXT NOT NULL DEFAULT '',
    evidence_uri      TEXT NOT NULL DEFAULT '',
    attested_by       TEXT,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, gate, try_number)
);

CREATE TABLE IF NOT EXISTS slo_windows (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    step              TEXT NOT NULL,
    green_weight      INTEGER NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('passed', 'failed')),
    reason            TEXT NOT NULL,
    window_seconds    DOUBLE PRECISION NOT NULL,
    checks_json       TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    started_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, step, try_number)
);

CREATE TABLE IF NOT EXISTS approvals (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    gate              TEXT NOT NULL,
    decision          TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'timed_out', 'superseded', 'refused')),
    decided_by        TEXT NOT NULL,
    channel           TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, gate, decided_by, decision, try_number)
);

CREATE TABLE IF NOT EXISTS traffic_changes (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    reason            TEXT NOT NULL,
    blue_before       INTEGER NOT NULL,
    green_before      INTEGER NOT NULL,
    blue_after        INTEGER NOT NULL,
    green_after       INTEGER NOT NULL,
    router            TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    changed_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, task_id, try_number)
);

CREATE TABLE IF NOT EXISTS rollbacks (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    cause             TEXT NOT NULL,
    blue_weight_after INTEGER NOT NULL,
    green_removed     INTEGER NOT NULL,
    blue_healthy      INTEGER NOT NULL,
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    started_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at      TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, try_number)
);

CREATE TABLE IF NOT EXISTS notifications (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    channel           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    dedup_key         TEXT NOT NULL,
    status            TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, channel, dedup_key, task_id, try_number)
);

-- Not part of the record: which release holds an environment right now (one release per environment).
CREATE TABLE IF NOT EXISTS environment_locks (
    environment       TEXT NOT NULL PRIMARY KEY,
    release_id        TEXT NOT NULL,
    acquired_at       TIMESTAMP WITH TIME ZONE NOT NULL
);
