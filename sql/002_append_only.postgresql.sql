-- The record tables refuse UPDATE and DELETE: evidence, once written, stays.
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;

DO $$
DECLARE
    record_table TEXT;
BEGIN
    FOREACH record_table IN ARRAY ARRAY['releases', 'release_events', 'gate_results', 'slo_windows', 'approvals',
                                        'traffic_changes', 'rollbacks', 'notifications']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', record_table || '_append_only', record_table);
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()',
                       record_table || '_append_only', record_table);
    END LOOP;
END;
$$;
