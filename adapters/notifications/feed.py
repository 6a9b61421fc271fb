"""The notification feed: rows written by the session log's recorder in the same transaction as
the events they announce (an outbox), keyed by the save's log position; an erasure deletes the
session's rows and writes its `session_erased` row, at its tombstone's position, the same way.
A row is *ready* once the `session_events` projection has passed its position, i.e. once what
it announces can be read; readers only ever see ready rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.database.base import Database
from adapters.readmodel.projection import tracked_position
from adapters.readmodel.session_events import NAME as PROJECTION_NAME
from application.notifications import Cursor, Notification
from application.scope import Scope

REBUILT_FROM = "rebuilt_from"
"""A `feed_horizons` row: the log head when 0.1.0 last rebuilt the read model in place (it
emptied it first); notifications up to there had been sent already. Rebuilds no longer rewind."""
PRUNED_THROUGH = "pruned_through"
"""A `feed_horizons` row: the highest position pruned from the feed."""

_READY_AFTER = (
    "SELECT position, kind, session_id, account_id, user_id, payload FROM session_feed"
    " WHERE position >= %s AND position <= (SELECT position FROM projection_tracking WHERE name = %s)"
    " ORDER BY position, kind LIMIT %s"
)
_READY_FOR_SCOPE_AFTER = (
    "SELECT position, kind, session_id, account_id, user_id, payload FROM session_feed"
    " WHERE account_id = %s AND user_id = %s AND position >= %s"
    " AND position <= (SELECT position FROM projection_tracking WHERE name = %s)"
    " ORDER BY position, kind LIMIT %s"
)
"""A row is ready once the `session_events` projection has passed its position."""


class NotificationFeed:
    def __init__(self, database: Database) -> None:
        self._db = database

    def readable_position(self) -> int:
        return tracked_position(self._db, PROJECTION_NAME)

    def rebuilt_from(self) -> int:
        return self._horizon(REBUILT_FROM)

    def _horizon(self, name: str) -> int:
        rows = self._db.fetch_all("SELECT position FROM feed_horizons WHERE name = %s", (name,))
        return int(rows[0]["position"]) if rows else 0

    def ready_after(self, after: Cursor, limit: int = 1000) -> list[Notification]:
        """Ready notifications of every scope after `after`, in feed order."""
        rows = self._db.fetch_all(_READY_AFTER, (after.position, PROJECTION_NAME, limit + 2))
        return [n for n in map(_notification, rows) if n.cursor > after][:limit]

    def replay(self, scope: Scope, after: Cursor, limit: int) -> list[Notification] | None:
        if after.position < self._horizon(PRUNED_THROUGH) or after.position > self.readable_position():
            return None  # pruned since, or from another log (a database replaced or reset)
        rows = self._db.fetch_all(
            _READY_FOR_SCOPE_AFTER, (scope.account_id, scope.user_id, after.position, PROJECTION_NAME, limit + 2)
        )
        return [n for n in map(_notification, rows) if n.cursor > after][:limit]

    def prune(self, older_than: timedelta) -> int:
        """Forgets notifications older than `older_than`; clients resuming from before them are
        told to re-query. Returns the new pruning horizon (0 if nothing was old enough)."""
        cutoff = datetime.now(UTC) - older_than
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement("SELECT max(position) AS horizon FROM session_feed WHERE created_at < %s"),
                (self._db.time(cutoff),),
            )
            horizon = cursor.fetchone()["horizon"]
            if horizon is None:
                return 0
            cursor.execute(self._db.statement("DELETE FROM session_feed WHERE position <= %s"), (horizon,))
            cursor.execute(
                self._db.statement("UPDATE feed_horizons SET position = %s WHERE name = %s AND position < %s"),
                (horizon, PRUNED_THROUGH, horizon),
            )
            return int(horizon)


def _notification(row: Any) -> Notification:
    return Notification(
        position=int(row["position"]),
        kind=row["kind"],
        session_id=int(row["session_id"]),
        account_id=int(row["account_id"]),
        user_id=int(row["user_id"]),
        payload=json.loads(row["payload"]),
    )
