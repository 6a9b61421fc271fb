"""The session log: eventsourcing persistence of `Session` aggregates on PostgreSQL or SQLite."""
