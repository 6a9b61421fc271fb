"""Use cases of session-events, in domain terms, and the ports they need."""
