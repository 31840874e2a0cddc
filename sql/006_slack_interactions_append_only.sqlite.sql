CREATE TRIGGER IF NOT EXISTS slack_interactions_append_only_update BEFORE UPDATE ON slack_interactions
BEGIN SELECT RAISE(ABORT, 'ledger table slack_interactions is append-only'); END;
CREATE TRIGGER IF NOT EXISTS slack_interactions_append_only_delete BEFORE DELETE ON slack_interactions
BEGIN SELECT RAISE(ABORT, 'ledger table slack_interactions is append-only'); END;
