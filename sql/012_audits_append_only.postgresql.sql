-- The audit tables refuse UPDATE and DELETE like the release record.
DROP TRIGGER IF EXISTS audit_runs_append_only ON audit_runs;
CREATE TRIGGER audit_runs_append_only BEFORE UPDATE OR DELETE ON audit_runs
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS audit_findings_append_only ON audit_findings;
CREATE TRIGGER audit_findings_append_only BEFORE UPDATE OR DELETE ON audit_findings
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS audit_outcomes_append_only ON audit_outcomes;
CREATE TRIGGER audit_outcomes_append_only BEFORE UPDATE OR DELETE ON audit_outcomes
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS audit_notifications_append_only ON audit_notifications;
CREATE TRIGGER audit_notifications_append_only BEFORE UPDATE OR DELETE ON audit_notifications
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
