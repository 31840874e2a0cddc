DROP TRIGGER IF EXISTS approval_requests_append_only ON approval_requests;
CREATE TRIGGER approval_requests_append_only BEFORE UPDATE OR DELETE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
