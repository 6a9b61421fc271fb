"""Live notifications: tiny messages telling a scope's clients that a session has news.

They carry no event data (clients query for it) and are only delivered once what they announce
can be read. Each has a position in the session log, which is also its id for resuming."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from application.scope import Scope

SESSION_EVENTS = "session_events"
SESSION_UPDATED = "session_updated"
SESSION_ERASED = "session_erased"
KIND_RANK = {SESSION_EVENTS: 0, SESSION_UPDATED: 1, SESSION_ERASED: 0}
"""Orders the kinds that share a position: a call's `session_updated` follows its `session_events`.
An erasure's notification has a position of its own, its tombstone's."""


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a client is in the notification feed: a log position and a kind's rank there."""

    position: int
    rank: int = max(KIND_RANK.values()) + 1

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """Parses a `Last-Event-ID`; anything unparseable means 'no cursor'."""
        if not text:
            return None
        head, _, tail = text.strip().partition(".")
        try:
            position = int(head)
            rank = int(tail) if tail else 0
        except ValueError:
            return None
        return cls(position, rank) if position >= 0 and rank >= 0 else None


@dataclass(frozen=True)
class Notification:
    position: int
    kind: str
    session_id: int
    account_id: int
    user_id: int
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.position, KIND_RANK[self.kind])

    @property
    def event_id(self) -> str:
        rank = KIND_RANK[self.kind]
        return str(self.position) if rank == 0 else f"{self.position}.{rank}"

    def visible_to(self, scope: Scope) -> bool:
        return (self.account_id, self.user_id) == (scope.account_id, scope.user_id)


@dataclass(frozen=True)
class Announcement:
    """What a successful recording call announces; saved atomically with the events it announces."""

    session_id: int
    account_id: int
    user_id: int
    event_count: int
    session_update: Mapping[str, Any] | None = None


class Subscription(Protocol):
    async def next(self, timeout: float) -> Notification | None:
        """The next notification for the scope, or None if none came within `timeout` seconds.
        Raises `SubscriptionLagged` if the subscriber fell too far behind, `SubscriptionClosed`
        when the service shuts down."""
        ...

    def close(self) -> None: ...


class SubscriptionLagged(Exception):
    """Notifications were dropped for a slow subscriber: it should re-query and resubscribe."""


class SubscriptionClosed(Exception):
    """The service is shutting down."""


class SubscriptionRevoked(SubscriptionClosed):
    """The token the stream was opened with has been revoked, or has expired."""


class Notifier(Protocol):
    """Delivers notifications to the clients connected to this process, whichever process
    handled the write."""

    def subscribe(self, scope: Scope, token_id: int | None = None, expires_at: datetime | None = None) -> Subscription:
        """Notifications for the scope; the subscription ends (`SubscriptionRevoked`) when the
        token `token_id` is revoked or at `expires_at`."""
        ...

    def replay(self, scope: Scope, after: Cursor, limit: int) -> list[Notification] | None:
        """Readable notifications for the scope after `after`, oldest first; None if they cannot
        be told (already pruned, or `after` is not a position of this log): re-query instead."""
        ...

    def current(self) -> Cursor:
        """Where the feed stands now: after every notification that is ready."""
        ...
