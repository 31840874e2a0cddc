-- The audits' job results refuse UPDATE and DELETE like the release record.
CREATE TRIGGER IF NOT EXISTS audit_job_results_append_only_update BEFORE UPDATE ON audit_job_results
BEGIN SELECT RAISE(ABORT, 'ledger table audit_job_results is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_job_results_append_only_delete BEFORE DELETE ON audit_job_results
BEGIN SELECT RAISE(ABORT, 'ledger table audit_job_results is append-only'); END;
