-- Disaster recovery (checklist section 6): every backup of the ledger and the data stores, as taken (with the
-- fingerprints of what it holds), and every drill that restored the newest of them: each check it made and its
-- measured RTO and RPO. Append-only like the release record; every row names the Airflow task try that wrote it.

CREATE TABLE IF NOT EXISTS dr_backups (
    backup_id         TEXT NOT NULL PRIMARY KEY,
    service           TEXT NOT NULL,
    store             TEXT NOT NULL,
    dialect           TEXT NOT NULL CHECK (dialect IN ('sqlite', 'postgresql')),
    location          TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    size_bytes        BIGINT NOT NULL,
    tables_json       TEXT NOT NULL,
    taken_at          TIMESTAMP WITH TIME ZONE NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL
);

CREATE INDEX IF NOT EXISTS dr_backups_newest ON dr_backups (service, store, taken_at);

CREATE TABLE IF NOT EXISTS dr_drill_checks (
    drill_id          TEXT NOT NULL,
    store             TEXT NOT NULL,
    subject           TEXT NOT NULL,
    check_name        TEXT NOT NULL,
    backup_id         TEXT REFERENCES dr_backups (backup_id),
    measured          TEXT NOT NULL,
    expected          TEXT NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('passed', 'failed')),
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (drill_id, store, subject, check_name, try_number)
);

CREATE TABLE IF NOT EXISTS dr_drills (
    drill_id          TEXT NOT NULL,
    service           TEXT NOT NULL,
    started_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    rto_seconds       DOUBLE PRECISION,
    rpo_seconds       DOUBLE PRECISION,
    verdict           TEXT NOT NULL CHECK (verdict IN ('passed', 'failed')),
    detail            TEXT NOT NULL DEFAULT '',
    triggered_by      TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (drill_id, try_number)
);
