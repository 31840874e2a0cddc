-- The audits' job results refuse UPDATE and DELETE like the release record.
DROP TRIGGER IF EXISTS audit_job_results_append_only ON audit_job_results;
CREATE TRIGGER audit_job_results_append_only BEFORE UPDATE OR DELETE ON audit_job_results
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
