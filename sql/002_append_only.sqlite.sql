-- The record tables refuse UPDATE and DELETE: evidence, once written, stays.
CREATE TRIGGER IF NOT EXISTS releases_append_only_update BEFORE UPDATE ON releases
BEGIN SELECT RAISE(ABORT, 'ledger table releases is append-only'); END;
CREATE TRIGGER IF NOT EXISTS releases_append_only_delete BEFORE DELETE ON releases
BEGIN SELECT RAISE(ABORT, 'ledger table releases is append-only'); END;
CREATE TRIGGER IF NOT EXISTS release_events_append_only_update BEFORE UPDATE ON release_events
BEGIN SELECT RAISE(ABORT, 'ledger table release_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS release_events_append_only_delete BEFORE DELETE ON release_events
BEGIN SELECT RAISE(ABORT, 'ledger table release_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS gate_results_append_only_update BEFORE UPDATE ON gate_results
BEGIN SELECT RAISE(ABORT, 'ledger table gate_results is append-only'); END;
CREATE TRIGGER IF NOT EXISTS gate_results_append_only_delete BEFORE DELETE ON gate_results
BEGIN SELECT RAISE(ABORT, 'ledger table gate_results is append-only'); END;
CREATE TRIGGER IF NOT EXISTS slo_windows_append_only_update BEFORE UPDATE ON slo_windows
BEGIN SELECT RAISE(ABORT, 'ledger table slo_windows is append-only'); END;
CREATE TRIGGER IF NOT EXISTS slo_windows_append_only_delete BEFORE DELETE ON slo_windows
BEGIN SELECT RAISE(ABORT, 'ledger table slo_windows is append-only'); END;
CREATE TRIGGER IF NOT EXISTS approvals_append_only_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'ledger table approvals is append-only'); END;
CREATE TRIGGER IF NOT EXISTS approvals_append_only_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'ledger table approvals is append-only'); END;
CREATE TRIGGER IF NOT EXISTS traffic_changes_append_only_update BEFORE UPDATE ON traffic_changes
BEGIN SELECT RAISE(ABORT, 'ledger table traffic_changes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS traffic_changes_append_only_delete BEFORE DELETE ON traffic_changes
BEGIN SELECT RAISE(ABORT, 'ledger table traffic_changes is append-only'); END;
CREATE TRIGGER IF NOT EXISTS rollbacks_append_only_update BEFORE UPDATE ON rollbacks
BEGIN SELECT RAISE(ABORT, 'ledger table rollbacks is append-only'); END;
CREATE TRIGGER IF NOT EXISTS rollbacks_append_only_delete BEFORE DELETE ON rollbacks
BEGIN SELECT RAISE(ABORT, 'ledger table rollbacks is append-only'); END;
CREATE TRIGGER IF NOT EXISTS notifications_append_only_update BEFORE UPDATE ON notifications
BEGIN SELECT RAISE(ABORT, 'ledger table notifications is append-only'); END;
CREATE TRIGGER IF NOT EXISTS notifications_append_only_delete BEFORE DELETE ON notifications
BEGIN SELECT RAISE(ABORT, 'ledger table notifications is append-only'); END;
