DROP TRIGGER IF EXISTS approval_claims_append_only ON approval_claims;
CREATE TRIGGER approval_claims_append_only BEFORE UPDATE OR DELETE ON approval_claims
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
