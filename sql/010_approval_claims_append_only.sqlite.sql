CREATE TRIGGER IF NOT EXISTS approval_claims_append_only_update BEFORE UPDATE ON approval_claims
BEGIN SELECT RAISE(ABORT, 'ledger table approval_claims is append-only'); END;
CREATE TRIGGER IF NOT EXISTS approval_claims_append_only_delete BEFORE DELETE ON approval_claims
BEGIN SELECT RAISE(ABORT, 'ledger table approval_claims is append-only'); END;
