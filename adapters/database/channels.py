"""PostgreSQL channels the processes of one deployment tell each other news on (`NOTIFY`)."""

FEED_CHANNEL = "session_feed"
"""Told whenever `session_events` moves on (by its projector, or by an append that projects it
inline): notifications may have become readable."""
