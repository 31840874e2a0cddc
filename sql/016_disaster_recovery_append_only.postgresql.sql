-- The disaster-recovery tables refuse UPDATE and DELETE like the release record.
DROP TRIGGER IF EXISTS dr_backups_append_only ON dr_backups;
CREATE TRIGGER dr_backups_append_only BEFORE UPDATE OR DELETE ON dr_backups
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS dr_drill_checks_append_only ON dr_drill_checks;
CREATE TRIGGER dr_drill_checks_append_only BEFORE UPDATE OR DELETE ON dr_drill_checks
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
DROP TRIGGER IF EXISTS dr_drills_append_only ON dr_drills;
CREATE TRIGGER dr_drills_append_only BEFORE UPDATE OR DELETE ON dr_drills
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
