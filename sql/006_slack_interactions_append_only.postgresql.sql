DROP TRIGGER IF EXISTS slack_interactions_append_only ON slack_interactions;
CREATE TRIGGER slack_interactions_append_only BEFORE UPDATE OR DELETE ON slack_interactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
