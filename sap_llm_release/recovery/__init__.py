"""Disaster recovery (checklist section 6, "Disaster Recovery"): backups of the ledger and the data stores, and the
drill that restores the newest of them into scratch databases, proves them whole and measures RTO and RPO."""
