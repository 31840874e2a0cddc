-- The result of every inference job a release ran (weights verification, model evaluation, smoke and load tests):
-- the JSON its entrypoint wrote, exactly as written, with its digest, exit status and where it ran.
CREATE TABLE IF NOT EXISTS job_results (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
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
    PRIMARY KEY (release_id, job, task_id, try_number)
);
