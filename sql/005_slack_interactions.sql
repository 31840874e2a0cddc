-- Every request that reached the Slack callback endpoint, keyed by the digest of its signature and body: a replayed
-- request finds its key taken. Refusals are recorded here too, including those that name no known release.
CREATE TABLE IF NOT EXISTS slack_interactions (
    request_sha256    TEXT NOT NULL PRIMARY KEY,
    slack_timestamp   TEXT NOT NULL,
    release_id        TEXT,
    approval          TEXT,
    slack_user        TEXT,
    outcome           TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT '',
    received_at       TIMESTAMP WITH TIME ZONE NOT NULL
);
