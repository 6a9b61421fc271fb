"""Adapters: persistence (eventsourcing on PostgreSQL or SQLite), read model, tokens."""
