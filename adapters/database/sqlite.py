"""SQLite: how each thing `Database` offers is done there. Times are fixed-width UTC text, so
that SQLite's text ordering is time ordering; UUIDs are text."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteDatastore

from adapters.database.base import Database, store_errors

_IN_LIST_CHUNK = 500
"""Ids per `IN (...)` list: SQLite caps the number of parameters of a statement."""
TAKE_WRITE_LOCK = "UPDATE session_directory SET number = number WHERE 0"
"""A write that changes nothing: it takes the database's write lock, for a transaction that must
read the latest rows and then write, with no other writer committing in between."""
_CHECKPOINT_ATTEMPTS = 3


def to_sqlite_time(moment: datetime) -> str:
    """Fixed-width UTC text (years zero-padded), so that SQLite's text ordering is time ordering."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class SQLite(Database):
    name = "sqlite"

    def __init__(self, datastore: SQLiteDatastore, events_table: str = "stored_events") -> None:
        self.datastore = datastore
        self._events_table = events_table
        self._log_rows = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {events_table}"  # noqa: S608 (the library's table)
            " WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )

    @contextmanager
    def named_lock(self, name: str, *, wait: bool) -> Iterator[bool]:
        """An exclusive lock on a file beside the database (none is needed in memory)."""
        path = self.datastore.pool.db_name
        if path == ":memory:" or path.startswith("file:"):
            yield True
            return
        fd = os.open(f"{path}.{name}-lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def statement(self, sql: str) -> str:
        return _qmark(sql)

    def time(self, moment: datetime) -> Any:
        return to_sqlite_time(moment)

    def read_time(self, value: Any) -> datetime:
        return datetime.fromisoformat(str(value))

    def uuid(self, value: UUID) -> Any:
        return str(value)

    def read_uuid(self, value: Any) -> UUID:
        return UUID(str(value))

    def json_text(self, column: str) -> str:
        return column

    def has_table(self, name: str) -> bool:
        rows = self.fetch_all("SELECT count(*) > 0 AS present FROM sqlite_master WHERE name = %s", (name,))
        return bool(rows[0]["present"])

    def allocate_session_number(self) -> int:
        with self.transaction(commit=True) as cursor:
            cursor.execute("INSERT INTO session_numbers (allocated_at) VALUES (?)", (self.now(),))
            return int(cursor.lastrowid)

    def select_recorded_event_ids(self, session_number: int, event_ids: Collection[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        ids = [str(event_id) for event_id in event_ids]
        for start in range(0, len(ids), _IN_LIST_CHUNK):
            chunk = ids[start : start + _IN_LIST_CHUNK]
            marks = _marks(len(chunk))
            query = f"SELECT event_id FROM session_event_ids WHERE session_id = %s AND event_id IN ({marks})"  # noqa: S608 (placeholders)
            rows = self.fetch_all(query, (session_number, *chunk))
            found.update(UUID(row["event_id"]) for row in rows)
        return found

    def recorded_event_ids_of(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        found: dict[int, set[UUID]] = {}
        for number, event_ids in wanted.items():
            if hits := self.select_recorded_event_ids(number, event_ids):
                found[number] = hits
        return found

    def session_tail(self, number: int, session_uuid: UUID, after_version: int) -> list[StoredEvent] | None:
        with self.transaction(commit=False) as cursor:
            cursor.execute("SELECT 1 FROM session_directory WHERE number = ?", (number,))
            if cursor.fetchone() is None:
                return None
            cursor.execute(
                f"SELECT originator_version, topic, state FROM {self._events_table}"  # noqa: S608 (the library's table)
                " WHERE originator_id = ? AND originator_version > ? ORDER BY originator_version",
                (session_uuid.hex, after_version),
            )
            return [
                StoredEvent(session_uuid, int(row["originator_version"]), row["topic"], bytes(row["state"]))
                for row in cursor.fetchall()
            ]

    def session_numbers_of(self, session_uuids: Collection[UUID]) -> dict[UUID, int]:
        numbers: dict[UUID, int] = {}
        ids = [str(u) for u in session_uuids]
        for start in range(0, len(ids), _IN_LIST_CHUNK):
            chunk = ids[start : start + _IN_LIST_CHUNK]
            marks = _marks(len(chunk))
            query = f"SELECT number, session_uuid FROM session_directory WHERE session_uuid IN ({marks})"  # noqa: S608 (placeholders)
            rows = self.fetch_all(query, chunk)
            numbers.update({UUID(row["session_uuid"]): int(row["number"]) for row in rows})
        return numbers

    def snapshot_reads(self, cursor: Any, tables: Sequence[str] = ()) -> None:
        """A SQLite transaction already reads from one snapshot (WAL), schema included."""

    def tables_named_like(self, prefix: str) -> list[str]:
        rows = self.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, %s) = %s",
                              (len(prefix), prefix))
        return [row["name"] for row in rows]

    def announce(self, cursor: Any, channel: str, payload: str) -> None:
        """Nothing to do: SQLite has no notifications; its listeners poll (see `coordination`)."""

    def count_log_events_after(self, position: int) -> int:
        count = f"SELECT count(*) AS behind FROM {self._events_table} WHERE rowid > %s"  # noqa: S608 (the library's table)
        rows = self.fetch_all(count, (position,))
        return int(rows[0]["behind"])

    def sessions_present(self, cursor: Any, numbers: Collection[int]) -> set[int]:
        present: set[int] = set()
        ordered = list(numbers)
        for start in range(0, len(ordered), _IN_LIST_CHUNK):
            chunk = ordered[start : start + _IN_LIST_CHUNK]
            query = f"SELECT number FROM session_directory WHERE number IN ({_marks(len(chunk))})"  # noqa: S608 (placeholders)
            cursor.execute(_qmark(query), chunk)
            present.update(int(row["number"]) for row in cursor.fetchall())
        return present

    def select_for_update(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """SQLite locks the whole database, not rows: the write lock is taken before the read."""
        self.lock_log(cursor)
        cursor.execute(_qmark(statement), params)
        return list(cursor.fetchall())

    def lock_log(self, cursor: Any) -> None:
        """Takes the database's write lock (a write that changes nothing), and with it a snapshot
        that no other writer can make stale until the transaction ends. Taken before anything is
        read: a transaction that read first could not write if another had committed since."""
        cursor.execute(TAKE_WRITE_LOCK)

    def log_id(self, value: UUID) -> Any:
        return value.hex  # how the library stores an originator id

    def log_head(self, cursor: Any) -> int:
        cursor.execute(f"SELECT max(rowid) AS head FROM {self._events_table}")  # noqa: S608 (the library's table)
        return int(cursor.fetchone()["head"] or 0)

    def append_to_log(self, cursor: Any, stored: StoredEvent, after: int) -> int:
        """Positions are rowids, and SQLite gives a new row the largest rowid plus one: after the
        last rows were deleted it would hand out their positions again, which the projections
        have passed. So the position is chosen here, above every one the log has held."""
        position = max(after, self.log_head(cursor)) + 1
        cursor.execute(
            f"INSERT INTO {self._events_table} (rowid, originator_id, originator_version, topic, state)"  # noqa: S608 (the library's table)
            " VALUES (?, ?, ?, ?, ?)",
            (position, self.log_id(UUID(str(stored.originator_id))), stored.originator_version, stored.topic,
             stored.state),
        )
        return position

    def purge_deleted(self) -> bool:
        """`VACUUM` rewrites the file from the rows that are left: deleted rows leave copies in
        the free space of pages, even of pages that never held them (seen after page splits,
        `secure_delete` or not), and only a rewrite removes those. Then the WAL, which still holds
        the pages as they were, is checkpointed and truncated. Writers wait meanwhile (up to the
        busy timeout); readers holding an older snapshot can keep the WAL from being truncated,
        so the checkpoint is tried again briefly before giving up until the next one."""
        path = self.datastore.pool.db_name
        if path == ":memory:" or "mode=memory" in path:
            return True
        try:
            with store_errors(), self.datastore.get_connection(commit=True) as connection:
                cursor = connection.cursor()
                cursor.execute("VACUUM")  # outside any transaction: the pool's connections autocommit
                for attempt in range(_CHECKPOINT_ATTEMPTS):
                    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    if cursor.fetchone()[0] == 0:
                        return True
                    time.sleep(0.1 * (attempt + 1))
        except sqlite3.OperationalError:  # still locked after the busy timeout
            pass
        return False
    def log_rows_after(self, position: int, limit: int) -> list[tuple[int, Any, int, str, bytes]]:
        with self.transaction(commit=False) as cursor:
            cursor.sqlite_cursor.row_factory = None  # plain tuples
            cursor.execute(self._log_rows, (position, limit))
            return list(cursor.fetchall())

    def insert_rows(self, cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """`executemany` of one prepared INSERT: SQLite runs in this process, so a statement per
        row costs no round trip."""
        if rows:
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({_marks(len(columns))})"  # noqa: S608 (our table)
            cursor.executemany(self.statement(insert), rows)


def _marks(count: int) -> str:
    return ",".join(["%s"] * count)


@cache
def _qmark(sql: str) -> str:
    """`format` to `qmark` paramstyle. Our statements hold no literal `%`, so every `%s` is a
    placeholder; anything else with a `%` is refused rather than mistranslated."""
    translated = sql.replace("%s", "?")
    if "%" in translated:
        raise ValueError(f"unexpected % in SQL statement: {sql!r}")
    return translated
