"""Scheduled audits of the running service (checklist section 10): checks over a period, findings with a severity,
evidence in the ledger, a report people read. No Airflow imports here."""
