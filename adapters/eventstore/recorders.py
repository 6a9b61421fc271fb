"""Recorders that write our own rows atomically with the session log, and fail fast.

Alongside each save the recorder writes, in the same transaction as the stored events (the
tables are described in `adapters.database.schema`):
- `session_directory`: the session's row, with its first event;
- `session_event_ids`: the event ids the save records, for idempotent appends;
- `session_feed`: the save's announcement (the notification outbox), at its last log position;
and, under the log's lock, it refuses an append to a session erased since the writer loaded it
(`REFUSE_ERASED_SESSION`).
They travel as keyword arguments of `Application.save()`, which the library hands to the
recorder. The library retries a failing connection 10 times (minutes, with a pool timeout);
here an unreachable store gives up after two attempts, so callers get a prompt 503.

Event ids are inserted with ON CONFLICT DO NOTHING: a statement failing inside the library's
pipelined transaction would surface as "pipeline aborted" rather than as a conflict, and the
session's version check already rejects any save that raced with another (the caller then
re-reads the recorded ids and drops the duplicates).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import unwrap
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresFactory,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteFactory,
)
from eventsourcing.utils import retry
from psycopg import Cursor

from adapters.database.sqlite import to_sqlite_time
from application.notifications import SESSION_EVENTS, SESSION_UPDATED, Announcement

_fail_fast = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
PIPELINE_LIMIT_BYTES = 1_000_000
_library_insert_events = unwrap(PostgresApplicationRecorder.insert_events)


@dataclass(frozen=True)
class DirectoryEntry:
    number: int
    session_uuid: UUID
    account_id: int
    user_id: int
    created_at: datetime


@dataclass(frozen=True)
class RecordedIds:
    session_number: int
    event_ids: Sequence[UUID]


def feed_rows(announcement: object) -> list[tuple[str, int, int, int, str]]:
    """The notification-feed rows announcing one save: (kind, session, account, user, payload)."""
    if not isinstance(announcement, Announcement) or announcement.event_count == 0:
        return []
    owner = (announcement.session_id, announcement.account_id, announcement.user_id)
    rows = [
        (
            SESSION_EVENTS,
            *owner,
            json.dumps({"session_id": announcement.session_id, "event_count": announcement.event_count}),
        )
    ]
    if announcement.session_update is not None:
        payload = {"session_id": announcement.session_id, **announcement.session_update}
        rows.append((SESSION_UPDATED, *owner, json.dumps(payload)))
    return rows


_SET_CONVERSATION = "UPDATE session_directory SET external_conversation_id = %s WHERE number = %s"


def existing_session_of(kwargs: dict[str, Any]) -> int | None:
    """The session a save appends to, unless the save creates it."""
    recorded: RecordedIds | None = kwargs.get("recorded_ids")
    if recorded is None or kwargs.get("directory_entry") is not None:
        return None
    return recorded.session_number


REFUSE_ERASED_SESSION = "SELECT refuse_erased_session(%s)"
"""Run after the events are inserted, under the log's table lock (PostgreSQL; SQLite checks the
same in Python): a session erased since the writer loaded it (its directory row is gone) fails
the save with an integrity error, as a conflicting save fails; the writer then re-reads the
session and finds it gone (ADR 0013). Without it, a writer holding the session cached at an
older version would append at versions the erasure deleted, and bring the session back."""


def conversation_update(announcement: object) -> tuple[str, int] | None:
    """(conversation id, session number) when the save linked the session to a conversation, so
    that `session_directory` can find sessions by conversation."""
    if not isinstance(announcement, Announcement) or announcement.session_update is None:
        return None
    conversation_id = announcement.session_update.get("external_conversation_id")
    return (str(conversation_id), announcement.session_id) if conversation_id is not None else None


class FailFastPostgresAggregateRecorder(PostgresAggregateRecorder):
    """Snapshots: the library's recorder, giving up promptly when the store is unreachable."""

    insert_events = _fail_fast(unwrap(PostgresAggregateRecorder.insert_events))
    select_events = _fail_fast(unwrap(PostgresAggregateRecorder.select_events))


class SessionLogPostgresRecorder(PostgresApplicationRecorder):
    select_events = _fail_fast(unwrap(PostgresAggregateRecorder.select_events))
    select_notifications = _fail_fast(
        unwrap(PostgresApplicationRecorder.select_notifications)
    )
    max_notification_id = _fail_fast(
        unwrap(PostgresApplicationRecorder.max_notification_id)
    )

    @_fail_fast
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Small saves go through the library's pipelined transaction (fewest round trips). Large
        ones do not: psycopg's pipeline mode was seen to wedge for good on a request of several MB
        (inside the transaction holding the log's exclusive lock, so every writer then failed);
        statement by statement, the same save goes through."""
        if sum(len(event.state) for event in stored_events) < PIPELINE_LIMIT_BYTES:
            return _library_insert_events(self, stored_events, **kwargs)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(self, curs: Cursor[Any], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """The library's (takes the log's lock, inserts), then `REFUSE_ERASED_SESSION` under that
        lock, on a cursor of its own (the insert's holds the new positions). Never prepared: in
        the pipeline it follows the insert, and a conflicting insert aborts it; psycopg would then
        take a statement the server never prepared for a prepared one."""
        super()._insert_stored_events(curs, stored_events, **kwargs)
        session = existing_session_of(kwargs)
        if session is not None:
            with curs.connection.cursor() as check:
                check.execute(REFUSE_ERASED_SESSION, (session,), prepare=False)

    def _insert_events(self, curs: Cursor[Any], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        entry: DirectoryEntry | None = kwargs.get("directory_entry")
        if entry is not None:
            curs.execute(
                "INSERT INTO session_directory"
                " (number, session_uuid, account_id, user_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (entry.number, entry.session_uuid, entry.account_id, entry.user_id, entry.created_at),
            )
        linked = conversation_update(kwargs.get("announcement"))
        if linked is not None:
            curs.execute(_SET_CONVERSATION, linked)
        recorded: RecordedIds | None = kwargs.get("recorded_ids")
        if recorded is not None and recorded.event_ids:
            curs.executemany(
                "INSERT INTO session_event_ids (session_id, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                [(recorded.session_number, event_id) for event_id in recorded.event_ids],
            )

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[Any], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Once the events are in (still in their transaction, under the library's table lock, so
        feed positions follow commit order): the announcement, at the save's last position.
        Written here rather than earlier so that a conflicting save fails on the conflict itself."""
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        rows = feed_rows(kwargs.get("announcement"))
        if rows and notification_ids:
            with curs.connection.cursor() as feed:
                feed.executemany(
                    "INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    [(notification_ids[-1], *row) for row in rows],
                )
        return notification_ids


LIBPQ_OPTIONS = "LIBPQ_OPTIONS"
"""Environment key (in the env the log is given, never the process's) of a JSON object of libpq
connection parameters from the URL's query string (`sslmode`, `sslrootcert`, ...)."""


class SessionLogPostgresFactory(PostgresFactory):
    aggregate_recorder_class = FailFastPostgresAggregateRecorder
    application_recorder_class = SessionLogPostgresRecorder

    def __init__(self, env: Any) -> None:
        """The library's datastore knows only host, port, database, user and password; the
        other connection parameters are added to its pool's before it opens."""
        super().__init__(env)
        options = json.loads(self.env.get(LIBPQ_OPTIONS) or "{}")
        if options:
            pool = self.datastore.pool
            pool.kwargs = {**(pool.kwargs if isinstance(pool.kwargs, dict) else {}), **options}


class SessionLogSQLiteRecorder(SQLiteApplicationRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        session = existing_session_of(kwargs)
        if session is not None:  # REFUSE_ERASED_SESSION: the insert took the database's write lock
            c.execute("SELECT 1 FROM session_directory WHERE number = ?", (session,))
            if c.fetchone() is None:
                raise IntegrityError(f"session {session} was erased")
        entry: DirectoryEntry | None = kwargs.get("directory_entry")
        if entry is not None:
            c.execute(
                "INSERT INTO session_directory"
                " (number, session_uuid, account_id, user_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (
                    entry.number,
                    str(entry.session_uuid),
                    entry.account_id,
                    entry.user_id,
                    to_sqlite_time(entry.created_at),
                ),
            )
        linked = conversation_update(kwargs.get("announcement"))
        if linked is not None:
            c.execute("UPDATE session_directory SET external_conversation_id = ? WHERE number = ?", linked)
        recorded: RecordedIds | None = kwargs.get("recorded_ids")
        if recorded is not None and recorded.event_ids:
            c.executemany(
                "INSERT INTO session_event_ids (session_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(recorded.session_number, str(event_id)) for event_id in recorded.event_ids],
            )
        rows = feed_rows(kwargs.get("announcement"))
        if rows and notification_ids:
            c.executemany(
                "INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(notification_ids[-1], *row, to_sqlite_time(datetime.now(UTC))) for row in rows],
            )
        return notification_ids


class SessionLogSQLiteFactory(SQLiteFactory):
    aggregate_recorder_class = SQLiteAggregateRecorder
    application_recorder_class = SessionLogSQLiteRecorder
