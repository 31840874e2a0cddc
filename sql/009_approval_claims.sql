-- Who may answer an approval request: the first answer to insert its row for the request (release, approval, try)
-- holds the claim, and only the holder writes its answer to Airflow. The primary key makes the claim atomic on
-- SQLite (one writer at a time) and on PostgreSQL (a second insert of the key waits for the first to commit, then
-- finds it taken). A Slack click claims before it answers in Airflow; the approval's own resume (an answer from the
-- UI, a timeout, a superseding SLO breach) claims what Airflow delivered, so a later click is told what decided.
-- What decided is recorded in approvals; a claim whose answer Airflow refused is recorded there as refused.
CREATE TABLE IF NOT EXISTS approval_claims (
    release_id        TEXT NOT NULL REFERENCES releases (release_id),
    approval          TEXT NOT NULL,
    try_number        INTEGER NOT NULL,
    decision          TEXT NOT NULL CHECK (decision IN ('approved', 'rejected', 'timed_out', 'superseded', 'refused')),
    decided_by        TEXT NOT NULL,
    channel           TEXT NOT NULL CHECK (channel IN ('slack', 'airflow', 'system')),
    answer            TEXT NOT NULL,
    request_sha256    TEXT,
    claimed_at        TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (release_id, approval, try_number)
);
