"""The lifecycle states a session can be in."""

from enum import StrEnum


class SessionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELLED = "cancelled"
