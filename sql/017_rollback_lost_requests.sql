-- Rollback step 3 (checklist section 8): the requests the router answered while a rollback switched traffic back
-- to blue, counted from its access log, and those it lost (a 5xx, or a client that gave up). More lost than the
-- spec tolerates, or a log that could not be read, is a failed verdict. Append-only like the release record.

CREATE TABLE IF NOT EXISTS rollback_lost_requests (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    window_start      TIMESTAMP WITH TIME ZONE NOT NULL,
    window_end        TIMESTAMP WITH TIME ZONE NOT NULL,
    source            TEXT NOT NULL,
    requests          INTEGER,
    lost              INTEGER,
    max_lost          INTEGER NOT NULL,
    verdict           TEXT NOT NULL CHECK (verdict IN ('passed', 'failed')),
    detail            TEXT NOT NULL DEFAULT '',
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    recorded_at       TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, try_number)
);
