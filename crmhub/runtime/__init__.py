"""What every crmhub service shares: config, logs, database, reliable messaging, ops endpoints."""
