CREATE TRIGGER IF NOT EXISTS job_results_append_only_update BEFORE UPDATE ON job_results
BEGIN SELECT RAISE(ABORT, 'ledger table job_results is append-only'); END;
CREATE TRIGGER IF NOT EXISTS job_results_append_only_delete BEFORE DELETE ON job_results
BEGIN SELECT RAISE(ABORT, 'ledger table job_results is append-only'); END;
