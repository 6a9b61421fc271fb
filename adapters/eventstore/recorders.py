"""The session log's recorders: the library's, writing a whole group of sessions' events (and our
own rows: see `adapters.eventstore.group_write`) in one transaction, and failing fast.

PostgreSQL: the transaction is sent in one go (one pipeline, one sync: a single round trip), so
the log's table lock is held only while the server works, never while it waits for this
process (whose threads may be busy elsewhere). Appends still take the library's EXCLUSIVE lock
on the events table, so that log positions follow commit order and a reader tailing the log
never skips an event. Which sessions are left out (another writer saved them first, or they are
gone) is decided by the server, under that lock, in the same statement that inserts the others.

The library retries a failing connection 10 times (minutes, with a pool timeout); here reads
give up after two attempts, so callers get a prompt 503. A group's transaction is never retried
here: whether it committed may be unknown, and the caller decides (`application.group_commit`)."""

from __future__ import annotations

import json
import select
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from inspect import unwrap
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteApplicationRecorder, SQLiteCursor, SQLiteFactory
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from adapters.database.channels import FEED_CHANNEL
from adapters.database.sqlite import TAKE_WRITE_LOCK, to_sqlite_time
from adapters.eventstore.group_write import GroupRows, GroupWritten

_fail_fast = retry((InterfaceError, OperationalError), max_attempts=2, wait=0.2)
PIPELINE_LIMIT_BYTES = 1_000_000
"""Above this, a group's statements are sent one by one: psycopg's pipeline mode was seen to wedge
for good on a request of several MB (inside the transaction holding the log's lock)."""

# Arrays are passed in binary (`%b`): psycopg dumps them some ten times faster than as text.
_OUTCOMES = """
WITH input AS (
  SELECT * FROM unnest(%(uuids)b::uuid[], %(versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[],
                       %(numbers)b::bigint[], %(event_ids)b::uuid[], %(sequences)b::bigint[],
                       %(event_types)b::text[], %(sent_ats)b::timestamptz[], %(received_ats)b::timestamptz[],
                       %(datas)b::text[], %(metadatas)b::text[])
    WITH ORDINALITY AS i(originator_id, originator_version, topic, state, number, event_id, sequence,
                         event_type, sent_at, received_at, data, metadata, n)
), gone AS (
  SELECT DISTINCT i.originator_id FROM input i
  WHERE NOT EXISTS (SELECT 1 FROM session_directory d WHERE d.number = i.number)
), conflicted AS (
  SELECT DISTINCT i.originator_id FROM input i
  JOIN {events} e ON e.originator_id = i.originator_id AND e.originator_version = i.originator_version
  UNION
  SELECT DISTINCT u.originator_id FROM unnest(%(u_uuids)b::uuid[], %(u_numbers)b::bigint[], %(u_ids)b::uuid[])
    AS u(originator_id, number, event_id)
  WHERE EXISTS (SELECT 1 FROM session_event_ids e WHERE e.session_id = u.number AND e.event_id = u.event_id)
), inserted AS (
  INSERT INTO {events} (originator_id, originator_version, topic, state)
  SELECT originator_id, originator_version, topic, state FROM input
  WHERE originator_id NOT IN (SELECT originator_id FROM gone UNION ALL SELECT originator_id FROM conflicted)
  ORDER BY n
  RETURNING notification_id, originator_id, originator_version
), ids AS (
  INSERT INTO session_event_ids (session_id, event_id)
  SELECT i.number, i.event_id FROM input i JOIN inserted USING (originator_id, originator_version)
  WHERE i.event_id IS NOT NULL
  ON CONFLICT DO NOTHING
), feed AS (
  INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload)
  SELECT inserted.notification_id, f.kind, f.session_id, f.account_id, f.user_id, f.payload
  FROM unnest(%(f_uuids)b::uuid[], %(f_versions)b::bigint[], %(f_kinds)b::text[], %(f_sessions)b::bigint[],
              %(f_accounts)b::bigint[], %(f_users)b::bigint[], %(f_payloads)b::text[])
    AS f(originator_id, originator_version, kind, session_id, account_id, user_id, payload)
  JOIN inserted USING (originator_id, originator_version)
), links AS (
  UPDATE session_directory d SET external_conversation_id = l.conversation_id
  FROM unnest(%(l_numbers)b::bigint[], %(l_uuids)b::uuid[], %(l_conversations)b::text[])
    AS l(number, originator_id, conversation_id)
  WHERE d.number = l.number AND l.originator_id IN (SELECT originator_id FROM inserted)
), caught_up AS (
  SELECT 1 FROM projection_tracking
  WHERE %(project)b AND name = 'session_events' AND state = 'live'
    AND position = (SELECT coalesce(max(notification_id), 0) FROM {events})
), projected AS (
  UPDATE projection_tracking SET position = (SELECT max(notification_id) FROM inserted), updated_at = now()
  WHERE name = 'session_events' AND EXISTS (SELECT 1 FROM caught_up) AND EXISTS (SELECT 1 FROM inserted)
  RETURNING position
), told AS (
  SELECT position, pg_notify(%(feed_channel)s, position::text) FROM projected
), event_rows AS (
  INSERT INTO session_events (session_id, sequence, id, event_type, sent_at, received_at, data, metadata, position)
  SELECT i.number, i.sequence, i.event_id, i.event_type, i.sent_at, i.received_at, i.data::json, i.metadata::json,
         inserted.notification_id
  FROM input i JOIN inserted USING (originator_id, originator_version)
  WHERE i.event_id IS NOT NULL AND EXISTS (SELECT 1 FROM projected)
)
SELECT 'saved' AS outcome, originator_id, max(notification_id) AS position FROM inserted GROUP BY originator_id
UNION ALL SELECT 'gone', originator_id, NULL FROM gone
UNION ALL SELECT 'conflict', originator_id, NULL FROM conflicted
UNION ALL SELECT 'projected', NULL, position FROM told
"""


_PLANNING = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)"
)
"""The group statement is planned once per connection, whatever the tables hold then.

Its plan does not depend on its arrays' contents: planning it anew for each transaction
(PostgreSQL's choice for a prepared statement's first executions, and for as long as a custom
plan looks cheaper) cost as long as running it. But a plan made once, on a young database, may
read a whole table where an index answers (the conflict check hashed every stored event of the
log, and the gone check the whole directory: each save took longer as the log grew, 0.8 ms to
4.6 ms for a 4-event group over the first 32,000 events; `bench/bench_write_ceiling.py --group 4
--events 24000` saved 1,390 then 582 events/s, now 2,925 and 3,535), and a prepared statement
keeps its plan for the life of its connection. Every table the statement reads has the index it
needs, so sequential scans are ruled out while it is planned: its cost then stays flat however
large the log grows (`tests/integration/test_group_write.py` holds the plan to it)."""


def _written(rows: list[tuple[str, UUID, int | None]]) -> GroupWritten:
    saved: dict[UUID, int] = {}
    conflicted: set[UUID] = set()
    gone: set[UUID] = set()
    projected = False
    for outcome, session_uuid, position in rows:
        if outcome == "projected":
            projected = True
        elif outcome == "saved" and position is not None:
            saved[session_uuid] = position
        elif outcome == "gone":
            gone.add(session_uuid)
        else:
            conflicted.add(session_uuid)
    return GroupWritten(saved, conflicted - gone, gone, projected)


def check_idle_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it hands out, without a round trip: an idle connection
    has nothing to read unless the server has closed it (terminated, restarted), in which case
    it is closed here and the pool hands out another. A ping on every checkout (`pre_ping`) cost
    a round trip per request; without any check, each worker's next request failed after the
    connections were killed."""
    if conn.closed:
        raise psycopg.OperationalError("connection closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        conn.close()
        raise psycopg.OperationalError("the server closed the connection")


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
    select_notifications = _fail_fast(unwrap(PostgresApplicationRecorder.select_notifications))
    max_notification_id = _fail_fast(unwrap(PostgresApplicationRecorder.max_notification_id))

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self._group_statement = SQL(_OUTCOMES).format(events=Identifier(self.datastore.schema, self.events_table_name))
        self._notify = SQL("NOTIFY {}").format(Identifier(self.channel_name))

    def insert_group(self, rows: GroupRows, *, project: bool = True) -> GroupWritten:
        """Writes the group in one transaction (see the module docstring); the library's errors
        (`OperationalError` when the store cannot be reached) are raised as they come."""
        params = self._group_params(rows, project)
        directory = [(e.number, e.session_uuid, e.account_id, e.user_id, e.created_at) for e in rows.directory]
        with self.datastore.get_connection() as conn:
            outcomes = conn.cursor()
            pipelined = rows.state_bytes < PIPELINE_LIMIT_BYTES
            try:
                with conn.pipeline() if pipelined else nullcontext(), conn.cursor() as curs:
                    curs.execute("BEGIN")
                    if directory:
                        curs.executemany(
                            "INSERT INTO session_directory (number, session_uuid, account_id, user_id, created_at)"
                            " VALUES (%s, %s, %s, %s, %s)",
                            directory,
                        )
                    curs.execute(_PLANNING, prepare=True)
                    for lock_statement in self.lock_table_statements:
                        curs.execute(lock_statement, prepare=True)
                    outcomes.execute(self._group_statement, params, prepare=True)
                    curs.execute(self._notify)
                    curs.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
                    conn.rollback()
                raise
            return _written([(r["outcome"], r["originator_id"], r["position"]) for r in outcomes.fetchall()])

    @staticmethod
    def _group_params(rows: GroupRows, project: bool) -> dict[str, Any]:
        recorded = rows.recorded
        return {
            "project": project,
            "feed_channel": FEED_CHANNEL,
            "sequences": [r.sequence if r else None for r in recorded],
            "event_types": [r.event_type if r else None for r in recorded],
            "sent_ats": [r.sent_at if r else None for r in recorded],
            "received_ats": [r.timestamp if r else None for r in recorded],
            "datas": [r.data if r else None for r in recorded],
            "metadatas": [r.metadata if r else None for r in recorded],
            "uuids": [s.originator_id for s in rows.stored],
            "versions": [s.originator_version for s in rows.stored],
            "topics": [s.topic for s in rows.stored],
            "states": [s.state for s in rows.stored],
            "numbers": rows.numbers,
            "event_ids": rows.event_ids,
            "f_uuids": [f.session_uuid for f in rows.feed],
            "f_versions": [f.version for f in rows.feed],
            "f_kinds": [f.kind for f in rows.feed],
            "f_sessions": [f.session_id for f in rows.feed],
            "f_accounts": [f.account_id for f in rows.feed],
            "f_users": [f.user_id for f in rows.feed],
            "f_payloads": [f.payload for f in rows.feed],
            "l_numbers": [number for number, _, _ in rows.links],
            "l_uuids": [session_uuid for _, session_uuid, _ in rows.links],
            "l_conversations": [conversation for _, _, conversation in rows.links],
            "u_uuids": [session_uuid for session_uuid, _, _ in rows.unverified],
            "u_numbers": [number for _, number, _ in rows.unverified],
            "u_ids": [event_id for _, _, event_id in rows.unverified],
        }


LIBPQ_OPTIONS = "LIBPQ_OPTIONS"
"""Environment key (in the env the log is given, never the process's) of a JSON object of libpq
connection parameters from the URL's query string (`sslmode`, `sslrootcert`, ...)."""


class SessionLogPostgresFactory(PostgresFactory):
    aggregate_recorder_class = FailFastPostgresAggregateRecorder
    application_recorder_class = SessionLogPostgresRecorder

    def __init__(self, env: Any) -> None:
        """The library's datastore knows only host, port, database, user and password; the
        other connection parameters are added to its pool's before it opens. Its pool checks a
        connection before handing it out without a round trip (`check_idle_connection`)."""
        super().__init__(env)
        pool = self.datastore.pool
        options = json.loads(self.env.get(LIBPQ_OPTIONS) or "{}")
        if options:
            pool.kwargs = {**(pool.kwargs if isinstance(pool.kwargs, dict) else {}), **options}
        pool._check = check_idle_connection  # the library builds the pool, and its `check` argument is this


class SessionLogSQLiteRecorder(SQLiteApplicationRecorder):
    def insert_group(self, rows: GroupRows, *, project: bool = True) -> GroupWritten:
        """Writes the group in one transaction, taking SQLite's write lock first (BEGIN
        IMMEDIATE: a transaction that read before asking to write could be refused the lock)."""
        with self._immediate_transaction() as c:
            present = self._present(c, rows)
            gone = {u for u, n in rows.numbers_by_uuid.items() if n not in present}
            for entry in rows.directory:
                c.execute(
                    "INSERT INTO session_directory (number, session_uuid, account_id, user_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        entry.number,
                        str(entry.session_uuid),
                        entry.account_id,
                        entry.user_id,
                        to_sqlite_time(entry.created_at),
                    ),
                )
                gone.discard(entry.session_uuid)
            conflicted = (self._conflicted(c, rows) | self._known(c, rows)) - gone
            caught_up = project and self._caught_up(c)
            saved: dict[UUID, int] = {}
            positions: dict[tuple[UUID, int], int] = {}
            ids: list[tuple[int, str]] = []
            projected: list[tuple[Any, ...]] = []
            for stored, number, event_id, recorded in zip(
                rows.stored, rows.numbers, rows.event_ids, rows.recorded, strict=True
            ):
                session_uuid = stored.originator_id
                assert isinstance(session_uuid, UUID)  # noqa: S101 (the mapper gives the aggregate's id)
                if session_uuid in gone or session_uuid in conflicted:
                    continue
                c.execute(
                    self.insert_events_statement,
                    (session_uuid.hex, stored.originator_version, stored.topic, stored.state),
                )
                positions[(session_uuid, stored.originator_version)] = saved[session_uuid] = c.lastrowid
                if event_id is not None:
                    ids.append((number, str(event_id)))
                if caught_up and recorded is not None:
                    projected.append(
                        (
                            number,
                            recorded.sequence,
                            str(recorded.event_id),
                            recorded.event_type,
                            to_sqlite_time(recorded.sent_at),
                            to_sqlite_time(recorded.timestamp),
                            recorded.data,
                            recorded.metadata,
                            c.lastrowid,
                        )
                    )
            if ids:
                c.executemany(
                    "INSERT INTO session_event_ids (session_id, event_id) VALUES (?, ?) ON CONFLICT DO NOTHING", ids
                )
            now = to_sqlite_time(datetime.now(UTC))
            feed = [
                (positions[(f.session_uuid, f.version)], f.kind, f.session_id, f.account_id, f.user_id, f.payload, now)
                for f in rows.feed
                if (f.session_uuid, f.version) in positions
            ]
            if feed:
                c.executemany(
                    "INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    feed,
                )
            links = [(conversation, number) for number, u, conversation in rows.links if u in saved]
            if links:
                c.executemany("UPDATE session_directory SET external_conversation_id = ? WHERE number = ?", links)
            if caught_up and saved:
                self._project(c, projected, max(saved.values()))
        return GroupWritten(saved, conflicted, gone, caught_up and bool(saved))

    def _caught_up(self, c: Any) -> bool:
        """Whether `session_events` has projected every event of the log (under the write lock)."""
        c.execute(
            f"SELECT (SELECT position FROM projection_tracking WHERE name = 'session_events' AND state = 'live')"  # noqa: S608 (the library's table)
            f" = (SELECT coalesce(max(rowid), 0) FROM {self.events_table_name})"
        )
        row = c.fetchone()
        return bool(row is not None and row[0])

    @staticmethod
    def _project(c: Any, rows: list[tuple[Any, ...]], position: int) -> None:
        if rows:
            c.executemany(
                "INSERT INTO session_events (session_id, sequence, id, event_type, sent_at, received_at, data,"
                " metadata, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        c.execute(
            "UPDATE projection_tracking SET position = ?, updated_at = ? WHERE name = 'session_events'",
            (position, to_sqlite_time(datetime.now(UTC))),
        )

    @contextmanager
    def _immediate_transaction(self) -> Iterator[Any]:
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
            except sqlite3.OperationalError as error:  # the library's vocabulary: "cannot reach the store"
                raise OperationalError(str(error)) from error
            except sqlite3.IntegrityError as error:
                raise IntegrityError(str(error)) from error

    @staticmethod
    def _present(c: Any, rows: GroupRows) -> set[int]:
        numbers = sorted(set(rows.numbers_by_uuid.values()))
        present: set[int] = set()
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            marks = ",".join("?" * len(chunk))
            c.execute(f"SELECT number FROM session_directory WHERE number IN ({marks})", chunk)  # noqa: S608 (placeholders)
            present.update(int(row[0]) for row in c.fetchall())
        return present

    @staticmethod
    def _known(c: Any, rows: GroupRows) -> set[UUID]:
        """Sessions that have already recorded one of the client-chosen ids they were given."""
        known: set[UUID] = set()
        for session_uuid, number, event_id in rows.unverified:
            if session_uuid in known:
                continue
            c.execute("SELECT 1 FROM session_event_ids WHERE session_id = ? AND event_id = ?", (number, str(event_id)))
            if c.fetchone() is not None:
                known.add(session_uuid)
        return known

    def _conflicted(self, c: Any, rows: GroupRows) -> set[UUID]:
        """Sessions whose first new version is already stored: a session's versions are stored
        without gaps from 1, so if the first is free, so are the others."""
        first: dict[UUID, int] = {}
        for stored in rows.stored:
            session_uuid = stored.originator_id
            assert isinstance(session_uuid, UUID)  # noqa: S101 (the mapper gives the aggregate's id)
            first.setdefault(session_uuid, stored.originator_version)
        conflicted: set[UUID] = set()
        for session_uuid, version in first.items():
            c.execute(
                f"SELECT 1 FROM {self.events_table_name} WHERE originator_id = ? AND originator_version = ?",  # noqa: S608 (the library's table)
                (session_uuid.hex, version),
            )
            if c.fetchone() is not None:
                conflicted.add(session_uuid)
        return conflicted


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
