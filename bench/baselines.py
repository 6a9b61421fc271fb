"""The raw-driver baselines: what the same rows cost written straight into a plain table, on the
same database, in the same run, by the same number of clients.

PostgreSQL: psycopg `COPY` (bulk) and one-row autocommit `INSERT`s. SQLite has no COPY: its
bulk baseline is `executemany` inside one transaction. The table is logged/durable (not
UNLOGGED or TEMP): the event store pays for durability, so its baseline does too."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from psycopg.types.string import TextLoader

from bench.events import Event
from bench.load import Job, Run, run_clients
from bench.stores import Store

TABLE = "bench_events"
COLUMNS = "session_id, sequence, id, event_type, sent_at, data"
Row = tuple[int, int, Any, str, Any, str]


def rows_of(session_id: int, events: Sequence[Event]) -> list[Row]:
    return [(session_id, n, e.id, e.event_type, e.sent_at, e.data) for n, e in enumerate(events, start=1)]


def chunks(rows: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


class Baseline(Protocol):
    name_bulk: str
    name_single: str

    def bulk(self, rows_per_client: Sequence[Sequence[Row]], rows_per_transaction: int) -> Run:
        """Each client writes its rows, `rows_per_transaction` per transaction."""
        ...

    def single(self, rows_per_client: Sequence[Sequence[Row]]) -> Run:
        """Each client writes its rows one transaction (and round trip) each; latencies kept."""
        ...

    def copy_table(self, source: str, rows_per_transaction: int) -> tuple[int, float]:
        """Copies `source`'s rows into a new table with the same columns and indexes, from a
        single client; returns (rows, seconds) for the writing alone."""
        ...


def for_store(store: Store) -> Baseline:
    return PostgresBaseline(store.url) if store.kind == "postgres" else SQLiteBaseline(store.sqlite_path)


class PostgresBaseline:
    name_bulk = "COPY"
    name_single = "one-row autocommit INSERT"

    def __init__(self, url: str) -> None:
        self._url = url
        with self._connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (session_id bigint, sequence bigint, id uuid, event_type text,"
                " sent_at timestamptz, data text, PRIMARY KEY (session_id, sequence))"
            )

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, autocommit=True)

    def bulk(self, rows_per_client: Sequence[Sequence[Row]], rows_per_transaction: int) -> Run:
        def client(rows: Sequence[Row]) -> Job:
            def job(barrier: threading.Barrier) -> list[float]:
                with self._connect() as conn, conn.cursor() as cursor:
                    barrier.wait()
                    latencies = []
                    for chunk in chunks(rows, rows_per_transaction):
                        sent = time.perf_counter()
                        with conn.transaction(), cursor.copy(f"COPY {TABLE} ({COLUMNS}) FROM STDIN") as copy:
                            for row in chunk:
                                copy.write_row(row)
                        latencies.append(time.perf_counter() - sent)
                    return latencies

            return job

        return run_clients([client(rows) for rows in rows_per_client])

    def single(self, rows_per_client: Sequence[Sequence[Row]]) -> Run:
        statement = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"

        def client(rows: Sequence[Row]) -> Job:
            def job(barrier: threading.Barrier) -> list[float]:
                with self._connect() as conn:
                    barrier.wait()
                    latencies = []
                    for row in rows:
                        sent = time.perf_counter()
                        conn.execute(statement, row)  # autocommit: one transaction, one round trip
                        latencies.append(time.perf_counter() - sent)
                    return latencies

            return job

        return run_clients([client(rows) for rows in rows_per_client])

    def copy_table(self, source: str, rows_per_transaction: int) -> tuple[int, float]:
        target = f"bench_copy_of_{source}"
        with self._connect() as conn:
            for json_type in ("json", "jsonb"):  # rows as the projection has them: JSON as text
                conn.adapters.register_loader(json_type, TextLoader)
            cursor = conn.cursor()
            conn.execute(f"DROP TABLE IF EXISTS {target}")
            conn.execute(f"CREATE TABLE {target} (LIKE {source} INCLUDING ALL)")
            cursor.execute(f"SELECT * FROM {source}")
            columns = ", ".join(column.name for column in cursor.description or [])
            rows = cursor.fetchall()
            started = time.perf_counter()
            for chunk in chunks(rows, rows_per_transaction):
                with conn.transaction(), cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            seconds = time.perf_counter() - started
            conn.execute(f"DROP TABLE {target}")
        return len(rows), seconds


class SQLiteBaseline:
    """In the store's own file (WAL, default `synchronous`, as the event store opens it)."""

    name_bulk = "executemany"
    name_single = "one-row autocommit INSERT"

    def __init__(self, path: Any) -> None:
        self._path = str(path)
        conn = self._connect()
        try:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (session_id INTEGER, sequence INTEGER, id TEXT, event_type TEXT,"
                " sent_at TEXT, data TEXT, PRIMARY KEY (session_id, sequence))"
            )
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @staticmethod
    def _params(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        return [(s, q, str(i), t, at.isoformat(), d) for s, q, i, t, at, d in rows]

    def bulk(self, rows_per_client: Sequence[Sequence[Row]], rows_per_transaction: int) -> Run:
        statement = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"

        def client(rows: Sequence[Row]) -> Job:
            params = self._params(rows)

            def job(barrier: threading.Barrier) -> list[float]:
                conn = self._connect()
                try:
                    barrier.wait()
                    latencies = []
                    for chunk in chunks(params, rows_per_transaction):
                        sent = time.perf_counter()
                        conn.execute("BEGIN IMMEDIATE")
                        conn.executemany(statement, chunk)
                        conn.execute("COMMIT")
                        latencies.append(time.perf_counter() - sent)
                    return latencies
                finally:
                    conn.close()

            return job

        return run_clients([client(rows) for rows in rows_per_client])

    def single(self, rows_per_client: Sequence[Sequence[Row]]) -> Run:
        statement = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"

        def client(rows: Sequence[Row]) -> Job:
            params = self._params(rows)

            def job(barrier: threading.Barrier) -> list[float]:
                conn = self._connect()
                try:
                    barrier.wait()
                    latencies = []
                    for row in params:
                        sent = time.perf_counter()
                        conn.execute(statement, row)
                        latencies.append(time.perf_counter() - sent)
                    return latencies
                finally:
                    conn.close()

            return job

        return run_clients([client(rows) for rows in rows_per_client])

    def copy_table(self, source: str, rows_per_transaction: int) -> tuple[int, float]:
        target = f"bench_copy_of_{source}"
        conn = self._connect()
        try:
            conn.execute(f"DROP TABLE IF EXISTS {target}")
            schema = conn.execute(
                "SELECT type, sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type DESC",
                (source,),
            ).fetchall()  # the table first, then its indexes
            for _, sql in schema:
                conn.execute(sql.replace(source, target).replace("IF NOT EXISTS ", ""))
            cursor = conn.execute(f"SELECT * FROM {source}")
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
            statement = f"INSERT INTO {target} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            started = time.perf_counter()
            for chunk in chunks(rows, rows_per_transaction):
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(statement, chunk)
                conn.execute("COMMIT")
            seconds = time.perf_counter() - started
            conn.execute(f"DROP TABLE {target}")
        finally:
            conn.close()
        return len(rows), seconds
