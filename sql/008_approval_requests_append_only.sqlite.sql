CREATE TRIGGER IF NOT EXISTS approval_requests_append_only_update BEFORE UPDATE ON approval_requests
BEGIN SELECT RAISE(ABORT, 'ledger table approval_requests is append-only'); END;
CREATE TRIGGER IF NOT EXISTS approval_requests_append_only_delete BEFORE DELETE ON approval_requests
BEGIN SELECT RAISE(ABORT, 'ledger table approval_requests is append-only'); END;
