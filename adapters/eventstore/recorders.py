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
from psycopg.sql import SQL, Identifier

from adapters.database.sqlite import TAKE_WRITE_LOCK, to_sqlite_time
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


def conversation_update(announcement: object) -> tuple[str, int] | None:
    """(conversation id, session number) when the save linked the session to a conversation, so
    that `session_directory` can find sessions by conversation."""
    if not isinstance(announcement, Announcement) or announcement.session_update is None:
        return None
    conversation_id = announcement.session_update.get("external_conversation_id")
    return (str(conversation_id), announcement.session_id) if conversation_id is not None else None


def first_new_versions(stored_events: Sequence[StoredEvent]) -> dict[Any, int]:
    """Each session a save writes to, and the first version it writes."""
    first: dict[Any, int] = {}
    for event in stored_events:
        first.setdefault(event.originator_id, event.originator_version)
    return first


REFUSE_ERASED_SESSION = (
    "INSERT INTO {events} (originator_id, originator_version, topic, state)"
    " SELECT %s, %s, 'refused: the session was erased', ''::bytea"
    " WHERE NOT EXISTS (SELECT 1 FROM session_directory WHERE session_uuid = %s) ON CONFLICT DO NOTHING"
)
"""An append to a session whose directory row is gone (erased since the writer loaded it) must
store nothing: run under the log's lock, just before the events are inserted, this claims the
first version the append writes, so that the insert fails as a conflicting append's does; the
writer re-reads the session, and finds it gone (ADR 0013). The claim never commits: the
insert's failure rolls the transaction back. Without it, a writer holding the session cached
at an older version would append at versions the erasure deleted, and bring it back.

It fails nothing itself (ON CONFLICT: the tombstone may hold that version already): in the
library's pipelined transaction a failing statement followed by another one surfaces as
"pipeline aborted" (a 503) rather than as a conflict. Never prepared: a statement the pipeline
aborts (after a lock timeout) would be taken by psycopg for prepared when it is not."""


class FailFastPostgresAggregateRecorder(PostgresAggregateRecorder):
    """Snapshots: the library's recorder, giving up promptly when the store is unreachable, and
    never writing one of an erased session."""

    select_events = _fail_fast(unwrap(PostgresAggregateRecorder.select_events))

    @_fail_fast
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """A snapshot is written after its save has committed, so its session may have been erased
        in between: it is written only if the session's directory row still exists, locked (KEY
        SHARE) until the snapshot commits. An erasure then either waits for the snapshot (and
        deletes it with the rest) or has already deleted the row (ADR 0013)."""
        if not stored_events:
            return None
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(
                "SELECT session_uuid FROM session_directory WHERE session_uuid = ANY(%s) FOR KEY SHARE",
                ([event.originator_id for event in stored_events],),
            )
            existing = {row["session_uuid"] for row in curs.fetchall()}
            kept = [event for event in stored_events if event.originator_id in existing]
            if kept:
                self._insert_stored_events(curs, kept)
        return None


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
        """The library's (the log's lock, its NOTIFY, the insert), with `REFUSE_ERASED_SESSION`
        between the lock and the insert, on a cursor of its own (the insert's holds the new
        positions)."""
        self._lock_table(curs)
        self._notify_channel(curs)
        refuse = SQL(REFUSE_ERASED_SESSION).format(events=Identifier(self.events_table_name))
        with curs.connection.cursor() as claim:
            for session, version in first_new_versions(stored_events).items():
                claim.execute(refuse, (session, version, session), prepare=False)
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

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
        for session in first_new_versions(stored_events):  # REFUSE_ERASED_SESSION: under the write lock
            c.execute("SELECT 1 FROM session_directory WHERE session_uuid = ?", (str(session),))
            if c.fetchone() is None:
                raise IntegrityError(f"session {session} was erased")  # rolls the whole save back
        return notification_ids


class SessionSnapshotsSQLiteRecorder(SQLiteAggregateRecorder):
    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """As on PostgreSQL, a snapshot of an erased session is not written; the check follows the
        write lock, so that no erasure commits between it and the write."""
        c.execute(TAKE_WRITE_LOCK)
        ids = [str(event.originator_id) for event in stored_events]
        marks = ",".join("?" * len(ids))
        c.execute(f"SELECT session_uuid FROM session_directory WHERE session_uuid IN ({marks})", ids)  # noqa: S608 (placeholders)
        existing = {row["session_uuid"] for row in c.fetchall()}
        kept = [event for event in stored_events if str(event.originator_id) in existing]
        return super()._insert_events(c, kept, **kwargs) if kept else None


class SessionLogSQLiteFactory(SQLiteFactory):
    aggregate_recorder_class = SessionSnapshotsSQLiteRecorder
    application_recorder_class = SessionLogSQLiteRecorder
