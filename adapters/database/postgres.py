"""PostgreSQL: how each thing `Database` offers is done there."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from psycopg.conninfo import make_conninfo
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from adapters.database.base import Database, store_errors
from adapters.database.url import DatabaseSettings

_JSON, _JSONB, _TEXT = (psycopg.adapters.types[name].oid for name in ("json", "jsonb", "text"))


def _lock_key(name: str) -> int:
    """A stable 63-bit advisory lock key for a lock name."""
    return int.from_bytes(hashlib.blake2b(f"session-events/{name}".encode(), digest_size=8).digest()) >> 1


class Postgres(Database):
    name = "postgres"

    def __init__(self, datastore: PostgresDatastore, events_table: str, log_channel: str) -> None:
        self.datastore = datastore
        self._events_table = events_table
        self.log_channel = log_channel
        """The channel the event store NOTIFYs on every append."""
        self._tail = (
            "SELECT e.originator_version, e.topic, e.state FROM session_directory d"  # noqa: S608 (the library's table)
            f" LEFT JOIN {events_table} e ON e.originator_id = %s AND e.originator_version > %s"
            " WHERE d.number = %s ORDER BY e.originator_version"
        )
        self._log_rows = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(Identifier(events_table))
        self._copy_types: dict[tuple[str, tuple[str, ...]], list[int]] = {}

    def pool_usage(self) -> dict[str, int] | None:
        stats = self.datastore.pool.get_stats()
        idle = stats.get("pool_available", 0)
        return {
            "in_use": stats.get("pool_size", 0) - idle,
            "idle": idle,
            "waiting": stats.get("requests_waiting", 0),
        }

    @contextmanager
    def named_lock(self, name: str, *, wait: bool) -> Iterator[bool]:
        key = _lock_key(name)
        with store_errors(), self.datastore.get_connection() as connection:
            if wait:
                connection.execute("SELECT pg_advisory_lock(%s)", (key,))
            else:
                row = connection.execute("SELECT pg_try_advisory_lock(%s) AS taken", (key,)).fetchone()
                if not (row and row["taken"]):
                    yield False
                    return
            try:
                yield True
            finally:
                connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def fetch_all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """A lone read needs no BEGIN/ROLLBACK around it (the pool's connections are in
        autocommit): that saves two round trips on every read."""
        with store_errors(), self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall())

    def write_one(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """In autocommit, a single statement is its own transaction: one round trip, not three."""
        with store_errors(), self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    def time(self, moment: datetime) -> Any:
        return moment

    def read_time(self, value: Any) -> datetime:
        if not isinstance(value, datetime):
            raise TypeError(f"expected a timestamptz, got {value!r}")
        return value

    def uuid(self, value: UUID) -> Any:
        return value

    def read_uuid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(str(value))

    def json_text(self, column: str) -> str:
        return f"{column}::text AS {column}"

    def has_table(self, name: str) -> bool:
        rows = self.fetch_all("SELECT to_regclass(%s) IS NOT NULL AS present", (name,))
        return bool(rows[0]["present"])

    def allocate_session_number(self) -> int:
        return int(self.fetch_all("SELECT nextval('session_numbers') AS number")[0]["number"])

    def select_recorded_event_ids(self, session_number: int, event_ids: Collection[UUID]) -> set[UUID]:
        # One index probe per id (LATERAL ... LIMIT 1): with `event_id = ANY(...)` the planner
        # scans all of a long session's ids, so appends slowed down as sessions grew.
        rows = self.fetch_all(
            "SELECT q.id AS event_id FROM unnest(%s::uuid[]) AS q(id) CROSS JOIN LATERAL"
            " (SELECT 1 FROM session_event_ids e WHERE e.session_id = %s AND e.event_id = q.id LIMIT 1) AS hit",
            (list(event_ids), session_number),
        )
        return {row["event_id"] for row in rows}

    def recorded_event_ids_of(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        pairs = [(number, event_id) for number, ids in wanted.items() for event_id in ids]
        rows = self.fetch_all(
            "SELECT q.session_id, q.event_id FROM unnest(%b::bigint[], %b::uuid[]) AS q(session_id, event_id)"
            " WHERE EXISTS (SELECT 1 FROM session_event_ids e WHERE e.session_id = q.session_id"
            " AND e.event_id = q.event_id)",
            ([number for number, _ in pairs], [event_id for _, event_id in pairs]),
        )
        found: dict[int, set[UUID]] = {}
        for row in rows:
            found.setdefault(int(row["session_id"]), set()).add(row["event_id"])
        return found

    def session_tail(self, number: int, session_uuid: UUID, after_version: int) -> list[StoredEvent] | None:
        rows = self.fetch_all(self._tail, (session_uuid, after_version, number))
        if not rows:
            return None
        return [
            StoredEvent(session_uuid, int(row["originator_version"]), row["topic"], bytes(row["state"]))
            for row in rows
            if row["originator_version"] is not None
        ]

    def session_numbers_of(self, session_uuids: Collection[UUID]) -> dict[UUID, int]:
        rows = self.fetch_all(
            "SELECT number, session_uuid FROM session_directory WHERE session_uuid = ANY(%s)", (list(session_uuids),)
        )
        return {row["session_uuid"]: int(row["number"]) for row in rows}

    def snapshot_reads(self, cursor: Any, tables: Sequence[str] = ()) -> None:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if tables:  # LOCK takes no snapshot: the first query after it does
            cursor.execute(SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(SQL(", ").join(map(Identifier, tables))))

    def tables_named_like(self, prefix: str) -> list[str]:
        rows = self.fetch_all(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, %s)",
            (prefix,),
        )
        return [row["tablename"] for row in rows]

    def announce(self, cursor: Any, channel: str, payload: str) -> None:
        cursor.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    def count_log_events_after(self, position: int) -> int:
        table = self._events_table
        count = f"SELECT count(*) AS behind FROM {table} WHERE notification_id > %s"  # noqa: S608 (the library's table)
        rows = self.fetch_all(count, (position,))
        return int(rows[0]["behind"])

    def sessions_present(self, cursor: Any, numbers: Collection[int]) -> set[int]:
        cursor.execute("SELECT number FROM session_directory WHERE number = ANY(%s)", (list(numbers),))
        return {int(row["number"]) for row in cursor.fetchall()}

    def select_for_update(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        self._wait_for_locks_as_appends_do(cursor)
        cursor.execute(statement + " FOR UPDATE", params)
        return list(cursor.fetchall())

    def lock_log(self, cursor: Any) -> None:
        """The lock every append takes (the library's), so that positions follow commit order."""
        self._wait_for_locks_as_appends_do(cursor)
        cursor.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(Identifier(self._events_table)))

    def _wait_for_locks_as_appends_do(self, cursor: Any) -> None:
        """As long as an append waits for the log's lock, then a prompt 503, never a hang."""
        cursor.execute(SQL("SET LOCAL lock_timeout = '{}s'").format(int(self.datastore.lock_timeout or 5)))

    def log_id(self, value: UUID) -> Any:
        return value

    def log_head(self, cursor: Any) -> int:
        cursor.execute(SQL("SELECT max(notification_id) AS head FROM {}").format(Identifier(self._events_table)))
        return int(cursor.fetchone()["head"] or 0)

    def append_to_log(self, cursor: Any, stored: StoredEvent, after: int) -> int:
        """Positions come from the table's sequence, which never goes back; the NOTIFY is the
        library's own, which wakes every process's projections."""
        cursor.execute(
            SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)"
                " RETURNING notification_id"
            ).format(Identifier(self._events_table)),
            (stored.originator_id, stored.originator_version, stored.topic, stored.state),
        )
        position = int(cursor.fetchone()["notification_id"])
        cursor.execute(SQL("NOTIFY {}").format(Identifier(self.log_channel)))
        return position

    def purge_deleted(self) -> bool:
        """Nothing is done: a deleted row leaves every query and `pg_dump` at once, but its bytes
        stay in the table's pages until `VACUUM FULL` rewrites them (a plain VACUUM left them in
        half the pages, measured), and in the WAL and backups until they expire. VACUUM on the
        log would also stop every append while it runs (ADR 0013)."""
        return True
    def log_rows_after(self, position: int, limit: int) -> list[tuple[int, Any, int, str, bytes]]:
        """A prepared statement, answered in binary (the state's bytes as they are, not in hex)."""
        with (
            store_errors(),
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(self._log_rows, (position, limit), prepare=True)
            return cursor.fetchall()

    def insert_rows(self, cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A binary `COPY`: no statement per row, and values sent as the column types' own bytes.
        A `json` column is sent the text itself (its binary form), not a Python object to dump."""
        if not rows:
            return
        types = self._copy_types_of(cursor, table, tuple(columns))
        copy = SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            Identifier(table), SQL(", ").join(map(Identifier, columns))
        )
        with cursor.copy(copy) as writer:
            writer.set_types(types)
            for row in rows:
                writer.write_row(row)

    def _copy_types_of(self, cursor: Any, table: str, columns: tuple[str, ...]) -> list[int]:
        """The columns' types, from the catalog, once per table name (a rebuild's generation has
        a name of its own, and the same types as the table it replaces)."""
        key = (table, columns)
        if key not in self._copy_types:
            cursor.execute(
                "SELECT attname, atttypid::int AS oid FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (table,),
            )
            oids = {row["attname"]: row["oid"] for row in cursor.fetchall()}
            if _JSONB in (oids[column] for column in columns):
                raise ValueError(f"{table}: binary COPY into jsonb is not supported")
            self._copy_types[key] = [_TEXT if oids[column] == _JSON else oids[column] for column in columns]
        return self._copy_types[key]


def dedicated_connection(settings: DatabaseSettings, application_name: str) -> psycopg.Connection[Any]:
    """A connection outside the pool, for a session that must live on its own (LISTEN, advisory
    locks); autocommit, named so that operators can see it in pg_stat_activity."""
    return psycopg.connect(
        make_conninfo("", **settings.options),
        host=settings.host,
        port=settings.port,
        dbname=settings.dbname,
        user=settings.user,
        password=settings.password,
        autocommit=True,
        connect_timeout=settings.connect_timeout,
        application_name=application_name,
    )


def reachability_problem(settings: DatabaseSettings) -> str | None:
    """Why the server refuses us, in its own words ('database "x" does not exist', 'password
    authentication failed'), or None if a connection opens. The pool only ever says that it
    could not get a connection in time, which hides the cause."""
    try:
        dedicated_connection(settings, "session-events check").close()
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None
