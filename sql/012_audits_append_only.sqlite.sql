-- The audit tables refuse UPDATE and DELETE like the release record.
CREATE TRIGGER IF NOT EXISTS audit_runs_append_only_update BEFORE UPDATE ON audit_runs
BEGIN SELECT RAISE(ABORT, 'ledger table audit_runs is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_runs_append_only_delete BEFORE DELETE ON audit_runs
BEGIN SELECT RAISE(ABORT, 'ledger table audit_runs is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_findings_append_only_update BEFORE UPDATE ON audit_findings
BEGIN SELECT RAISE(ABORT, 'ledger table audit_findings is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_findings_append_only_delete BEFORE DELETE ON audit_findings
BEGIN SELECT RAISE(ABORT, 'ledger table audit_findings is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_outcomes_append_only_update BEFORE UPDATE ON audit_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger table audit_outcomes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_outcomes_append_only_delete BEFORE DELETE ON audit_outcomes
BEGIN SELECT RAISE(ABORT, 'ledger table audit_outcomes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_notifications_append_only_update BEFORE UPDATE ON audit_notifications
BEGIN SELECT RAISE(ABORT, 'ledger table audit_notifications is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_notifications_append_only_delete BEFORE DELETE ON audit_notifications
BEGIN SELECT RAISE(ABORT, 'ledger table audit_notifications is append-only'); END;
