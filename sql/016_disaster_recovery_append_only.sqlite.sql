-- The disaster-recovery tables refuse UPDATE and DELETE like the release record.
CREATE TRIGGER IF NOT EXISTS dr_backups_append_only_update BEFORE UPDATE ON dr_backups
BEGIN SELECT RAISE(ABORT, 'ledger table dr_backups is append-only'); END;
CREATE TRIGGER IF NOT EXISTS dr_backups_append_only_delete BEFORE DELETE ON dr_backups
BEGIN SELECT RAISE(ABORT, 'ledger table dr_backups is append-only'); END;
CREATE TRIGGER IF NOT EXISTS dr_drill_checks_append_only_update BEFORE UPDATE ON dr_drill_checks
BEGIN SELECT RAISE(ABORT, 'ledger table dr_drill_checks is append-only'); END;
CREATE TRIGGER IF NOT EXISTS dr_drill_checks_append_only_delete BEFORE DELETE ON dr_drill_checks
BEGIN SELECT RAISE(ABORT, 'ledger table dr_drill_checks is append-only'); END;
CREATE TRIGGER IF NOT EXISTS dr_drills_append_only_update BEFORE UPDATE ON dr_drills
BEGIN SELECT RAISE(ABORT, 'ledger table dr_drills is append-only'); END;
CREATE TRIGGER IF NOT EXISTS dr_drills_append_only_delete BEFORE DELETE ON dr_drills
BEGIN SELECT RAISE(ABORT, 'ledger table dr_drills is append-only'); END;
