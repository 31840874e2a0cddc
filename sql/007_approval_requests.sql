-- Every approval a release opened: the task instance that waits for the answer (the Slack callback resolves exactly
-- this one), the Slack message carrying the buttons (updated with the decision), and the deadline.
CREATE TABLE IF NOT EXISTS approval_requests (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    approval          TEXT NOT NULL,
    point             TEXT NOT NULL,
    dag_id            TEXT NOT NULL,
    run_id            TEXT NOT NULL,
    task_id           TEXT NOT NULL,
    map_index         INTEGER NOT NULL,
    try_number        INTEGER NOT NULL,
    slack_channel     TEXT,
    slack_ts          TEXT,
    evidence          TEXT NOT NULL,
    opened_at         TIMESTAMP WITH TIME ZONE NOT NULL,
    deadline          TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, approval, try_number)
);
