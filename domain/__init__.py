"""The session-events domain: the `Session` aggregate and the side effects of recording events."""
