"""Recorders that keep two indexes atomically with the session log, and fail fast.

Alongside each save the recorder writes, in the same transaction as the stored events:
- `session_directory`: one row per session (number, owner), for listing a scope's sessions;
- `session_event_ids`: the client event ids a session recorded, for idempotent appends.
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
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
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
from psycopg.sql import SQL

from adapters.database import to_sqlite_time
from application.notifications import SESSION_EVENTS, SESSION_UPDATED, Announcement

_fail_fast = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
PIPELINE_LIMIT_BYTES = 1_000_000
_library_insert_events = PostgresApplicationRecorder.insert_events.__wrapped__  # type: ignore[attr-defined]


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


POSTGRES_INDEX_DDL = [
    "CREATE SEQUENCE IF NOT EXISTS session_numbers",
    "CREATE TABLE IF NOT EXISTS session_directory ("
    " number bigint PRIMARY KEY, session_uuid uuid NOT NULL UNIQUE,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, created_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS session_directory_scope ON session_directory (account_id, user_id, number DESC)",
    "CREATE TABLE IF NOT EXISTS session_event_ids ("
    " session_id bigint NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (session_id, event_id))",
    "CREATE TABLE IF NOT EXISTS session_feed ("
    " position bigint NOT NULL, kind text NOT NULL, session_id bigint NOT NULL,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, payload text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (position, kind))",
    "CREATE INDEX IF NOT EXISTS session_feed_scope ON session_feed (account_id, user_id, position)",
]

SQLITE_INDEX_DDL = [
    "CREATE TABLE IF NOT EXISTS session_numbers ("
    " number INTEGER PRIMARY KEY AUTOINCREMENT, allocated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS session_directory ("
    " number INTEGER PRIMARY KEY, session_uuid TEXT NOT NULL UNIQUE,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS session_directory_scope ON session_directory (account_id, user_id, number DESC)",
    "CREATE TABLE IF NOT EXISTS session_event_ids ("
    " session_id INTEGER NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (session_id, event_id))"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS session_feed ("
    " position INTEGER NOT NULL, kind TEXT NOT NULL, session_id INTEGER NOT NULL,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, payload TEXT NOT NULL,"
    " created_at TEXT NOT NULL, PRIMARY KEY (position, kind))"
    " WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS session_feed_scope ON session_feed (account_id, user_id, position)",
]


class FailFastPostgresAggregateRecorder(PostgresAggregateRecorder):
    """Snapshots: the library's recorder, giving up promptly when the store is unreachable."""

    insert_events = _fail_fast(PostgresAggregateRecorder.insert_events.__wrapped__)  # type: ignore[attr-defined]
    select_events = _fail_fast(PostgresAggregateRecorder.select_events.__wrapped__)  # type: ignore[attr-defined]


class SessionLogPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.extend(SQL(ddl) for ddl in POSTGRES_INDEX_DDL)  # type: ignore[arg-type]

    select_events = _fail_fast(PostgresAggregateRecorder.select_events.__wrapped__)  # type: ignore[attr-defined]
    select_notifications = _fail_fast(
        PostgresApplicationRecorder.select_notifications.__wrapped__  # type: ignore[attr-defined]
    )
    max_notification_id = _fail_fast(
        PostgresApplicationRecorder.max_notification_id.__wrapped__  # type: ignore[attr-defined]
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

    def _insert_events(self, curs: Cursor[Any], stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        entry: DirectoryEntry | None = kwargs.get("directory_entry")
        if entry is not None:
            curs.execute(
                "INSERT INTO session_directory"
                " (number, session_uuid, account_id, user_id, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (entry.number, entry.session_uuid, entry.account_id, entry.user_id, entry.created_at),
            )
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


class SessionLogPostgresFactory(PostgresFactory):
    aggregate_recorder_class = FailFastPostgresAggregateRecorder
    application_recorder_class = SessionLogPostgresRecorder


class SessionLogSQLiteRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *SQLITE_INDEX_DDL]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
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
