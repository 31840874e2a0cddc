-- The release ledger's own database in the compose stack's PostgreSQL (its tables come from sql/ migrations).
CREATE USER ledger WITH PASSWORD 'ledger';
CREATE DATABASE ledger OWNER ledger;
