-- The result of every inference job an audit ran (the weekly accuracy review's model evaluation): the JSON its
-- entrypoint wrote, exactly as written, with its digest, exit status and where it ran, as job_results for releases.
CREATE TABLE IF NOT EXISTS audit_job_results (
    audit_run_id      TEXT NOT NULL REFERENCES audit_runs (audit_run_id),
    job               TEXT NOT NULL,
    image             TEXT NOT NULL,
    command           TEXT NOT NULL,
    runner            TEXT NOT NULL,
    exit_code         INTEGER,
    passed            BOOLEAN,
    result_json       TEXT,
    result_sha256     TEXT,
    detail            TEXT NOT NULL DEFAULT '',
    started_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    finished_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (audit_run_id, job, task_id, try_number)
);
