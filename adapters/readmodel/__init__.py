"""The `session_events` read model and the projection that keeps it."""
