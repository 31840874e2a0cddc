-- The rollbacks' lost-request counts refuse UPDATE and DELETE like the release record.
CREATE TRIGGER IF NOT EXISTS rollback_lost_requests_append_only_update BEFORE UPDATE ON rollback_lost_requests
BEGIN SELECT RAISE(ABORT, 'ledger table rollback_lost_requests is append-only'); END;
CREATE TRIGGER IF NOT EXISTS rollback_lost_requests_append_only_delete BEFORE DELETE ON rollback_lost_requests
BEGIN SELECT RAISE(ABORT, 'ledger table rollback_lost_requests is append-only'); END;
