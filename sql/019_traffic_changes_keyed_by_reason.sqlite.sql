-- A traffic step's task shifts traffic and watches its window; when the window's trigger decides a breach it takes
-- all traffic off green for the same task try. Two changes of one try, told apart by their reason: the key gains it
-- (repeating a try's change still writes nothing new). SQLite cannot change a primary key: the table is rebuilt,
-- its rows and its append-only triggers kept.
BEGIN;
CREATE TABLE traffic_changes_keyed_by_reason (
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
    PRIMARY KEY (release_id, task_id, try_number, reason)
);
INSERT INTO traffic_changes_keyed_by_reason
    (release_id, reason, blue_before, green_before, blue_after, green_after, router, dag_id, run_id, task_id,
     try_number, changed_at)
SELECT release_id, reason, blue_before, green_before, blue_after, green_after, router, dag_id, run_id, task_id,
       try_number, changed_at
FROM traffic_changes;
DROP TABLE traffic_changes;
ALTER TABLE traffic_changes_keyed_by_reason RENAME TO traffic_changes;
CREATE TRIGGER IF NOT EXISTS traffic_changes_append_only_update BEFORE UPDATE ON traffic_changes
BEGIN SELECT RAISE(ABORT, 'ledger table traffic_changes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS traffic_changes_append_only_delete BEFORE DELETE ON traffic_changes
BEGIN SELECT RAISE(ABORT, 'ledger table traffic_changes is append-only'); END;
COMMIT;
