-- The rollbacks' lost-request counts refuse UPDATE and DELETE like the release record.
DROP TRIGGER IF EXISTS rollback_lost_requests_append_only ON rollback_lost_requests;
CREATE TRIGGER rollback_lost_requests_append_only BEFORE UPDATE OR DELETE ON rollback_lost_requests
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
