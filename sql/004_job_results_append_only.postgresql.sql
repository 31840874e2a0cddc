DROP TRIGGER IF EXISTS job_results_append_only ON job_results;
CREATE TRIGGER job_results_append_only BEFORE UPDATE OR DELETE ON job_results
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
