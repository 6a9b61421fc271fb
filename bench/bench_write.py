"""Write-path benchmark for session-events (a script, not a test).

Measures, in one run and against a raw-driver baseline measured in that same run:
  1. raw driver baselines: COPY-style bulk load (1000 rows per transaction) and single-row
     transactions, into a scratch (unlogged / temp) table and into a durable table;
  2. `SessionService.handle_events` (batches of 1000) and `handle_event` (one per call,
     sequential, and from 4 threads) throughput;
  3. a 1000-event batch appended to a long session (100,000 events) vs to a fresh one, with a
     warm cache and with a cold one (a new `bootstrap()` in this process, as a second process
     would be: the session is loaded from its snapshot plus the tail);
  4. how fast the read-model projection catches up with the log.

It creates its own database (PostgreSQL: `bench_<pid>` on the server of --database-url, dropped
at the end; SQLite: a new file beside the given path, deleted at the end). See bench/README.md.

    python bench/bench_write.py                       # PostgreSQL, default run (~1 minute)
    python bench/bench_write.py --quick --database-url sqlite:////tmp/x.db
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

import psycopg

from adapters.database.url import DatabaseSettings as StoreSettings
from adapters.eventstore.log import SNAPSHOT_INTERVAL
from adapters.eventstore.store import EventSourcedSessionStore
from application.scope import Scope
from application.services import SessionService
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.settings import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 1000
"""Events per `handle_events` call and rows per baseline COPY transaction."""
THREADS = 4
SCOPE = Scope(account_id=1, user_id=1)

Row = tuple[int, int, str, datetime, str]
"""A baseline row: (session_id, seq, event_type, sent_at, data)."""


@dataclass(frozen=True)
class Config:
    baseline_rows: int  # rows per COPY-baseline repetition
    single_rows: int  # rows / events per single-write repetition (sequential and threaded)
    app_batches: int  # 1000-event batches per handle_events repetition
    reps: int  # repetitions of the cheap measurements (the median is reported)
    long_batches: int  # 1000-event batches that build the long session
    growth_reps: int  # repetitions of the long-vs-fresh measurements

    @classmethod
    def for_mode(cls, *, quick: bool) -> Config:
        if quick:
            return cls(baseline_rows=2000, single_rows=200, app_batches=2, reps=2, long_batches=10, growth_reps=2)
        return cls(baseline_rows=10_000, single_rows=500, app_batches=10, reps=3, long_batches=100, growth_reps=5)


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def timed_threads(work: Sequence[Callable[[threading.Barrier], None]]) -> float:
    """Runs each callable in its own thread; each calls `barrier.wait()` once ready (connected),
    and the clock runs from the moment all are ready until the last one finishes."""
    barrier = threading.Barrier(len(work) + 1)
    errors: list[BaseException] = []

    def run(job: Callable[[threading.Barrier], None]) -> None:
        try:
            job(barrier)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    with suppress(threading.BrokenBarrierError):  # a job failed before it was ready: raised below
        barrier.wait()
        started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed


# --------------------------------------------------------------------------- the events


EVENT_TYPES = (
    "tool_called",
    "tool_result",
    "file_modified",
    "command_output",
    "conversation_message_sent",
    "conversation_message_received",
)
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


class Events:
    """Makes the same kind of event for the application (raw fields, as the HTTP layer hands
    them over) and for the baselines (rows); `data` is ~100 bytes of JSON."""

    def __init__(self) -> None:
        self._next = 0

    def _spec(self) -> tuple[str, datetime, str]:
        i = self._next
        self._next += 1
        data = json.dumps(
            {"n": i, "tool": "read_file", "path": f"src/pkg/module_{i % 97}.py", "duration_ms": i % 977, "ok": True}
        )
        return EVENT_TYPES[i % len(EVENT_TYPES)], BASE_TIME + timedelta(milliseconds=i), data

    def raw(self, count: int) -> list[dict[str, bytes]]:
        batch = []
        for _ in range(count):
            event_type, sent_at, data = self._spec()
            batch.append(
                {
                    "id": json.dumps(str(uuid.uuid4())).encode(),
                    "event_type": json.dumps(event_type).encode(),
                    "sent_at": json.dumps(sent_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z").encode(),
                    "data": data.encode(),
                }
            )
        return batch

    def rows(self, session_id: int, count: int) -> list[Row]:
        rows = []
        for seq in range(1, count + 1):
            event_type, sent_at, data = self._spec()
            rows.append((session_id, seq, event_type, sent_at, data))
        return rows


# --------------------------------------------------------------------------- the baselines


class RawDriver(Protocol):
    """Writes baseline rows with the bare driver; every method returns elapsed seconds."""

    scratch: str
    durable: str

    def setup(self) -> None: ...
    def bulk(self, table: str, rows: Sequence[Row]) -> float: ...
    def single(self, table: str, rows: Sequence[Row]) -> float: ...
    def single_pipelined(self, table: str, rows: Sequence[Row]) -> float: ...
    def single_threads(self, table: str, rows_per_thread: Sequence[Sequence[Row]]) -> float: ...
    def teardown(self) -> None: ...


COLUMNS = "session_id, seq, event_type, sent_at, data"


class PostgresDriver:
    scratch = "bench_scratch"
    durable = "bench_durable"

    def __init__(self, settings: StoreSettings) -> None:
        self._conninfo = {
            "host": settings.host,
            "port": settings.port,
            "dbname": settings.dbname,
            "user": settings.user,
            "password": settings.password,
        }
        self._insert = f"INSERT INTO {{}} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s)"

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self._conninfo, autocommit=True)  # type: ignore[arg-type]

    def setup(self) -> None:
        columns = "session_id bigint, seq bigint, event_type text, sent_at timestamptz, data text"
        with self._connect() as conn:
            conn.execute(f"CREATE UNLOGGED TABLE {self.scratch} ({columns}, PRIMARY KEY (session_id, seq))")
            conn.execute(f"CREATE TABLE {self.durable} ({columns}, PRIMARY KEY (session_id, seq))")

    def bulk(self, table: str, rows: Sequence[Row]) -> float:
        with self._connect() as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            for chunk in chunks(rows, BATCH):
                with conn.transaction(), cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row(row)
            return time.perf_counter() - started

    def single(self, table: str, rows: Sequence[Row]) -> float:
        statement = self._insert.format(table)
        with self._connect() as conn:
            started = time.perf_counter()
            for row in rows:
                conn.execute(statement, row)  # autocommit: one transaction, one round trip per row
            return time.perf_counter() - started

    def single_pipelined(self, table: str, rows: Sequence[Row]) -> float:
        with self._connect() as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            cursor.executemany(self._insert.format(table), rows)  # autocommit: a transaction per row, pipelined
            return time.perf_counter() - started

    def single_threads(self, table: str, rows_per_thread: Sequence[Sequence[Row]]) -> float:
        statement = self._insert.format(table)

        def job(rows: Sequence[Row]) -> Callable[[threading.Barrier], None]:
            def run(barrier: threading.Barrier) -> None:
                with self._connect() as conn:
                    barrier.wait()
                    for row in rows:
                        conn.execute(statement, row)

            return run

        return timed_threads([job(rows) for rows in rows_per_thread])

    def teardown(self) -> None:
        with self._connect() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.scratch}, {self.durable}")


class SQLiteDriver:
    """SQLite has no COPY: the bulk baseline is `executemany` inside one transaction. The scratch
    table is a TEMP table (per connection, no fsync); the durable one lives in the same WAL-mode
    file as the event store, with the same (default) `synchronous` setting."""

    scratch = "temp.bench_scratch"
    durable = "main.bench_durable"

    def __init__(self, path: str) -> None:
        self._path = path
        self._insert = f"INSERT INTO {{}} ({COLUMNS}) VALUES (?, ?, ?, ?, ?)"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        columns = "session_id INTEGER, seq INTEGER, event_type TEXT, sent_at TEXT, data TEXT"
        for table in (self.scratch, self.durable):
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns}, PRIMARY KEY (session_id, seq))")
        return conn

    @staticmethod
    def _params(rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        return [(s, q, t, at.isoformat(), d) for s, q, t, at, d in rows]

    def setup(self) -> None:
        self._connect().close()

    def bulk(self, table: str, rows: Sequence[Row]) -> float:
        conn = self._connect()
        try:
            statement = self._insert.format(table)
            started = time.perf_counter()
            for chunk in chunks(rows, BATCH):
                conn.execute("BEGIN")
                conn.executemany(statement, self._params(chunk))
                conn.execute("COMMIT")
            return time.perf_counter() - started
        finally:
            conn.close()

    def single(self, table: str, rows: Sequence[Row]) -> float:
        conn = self._connect()
        try:
            statement = self._insert.format(table)
            started = time.perf_counter()
            for row in self._params(rows):
                conn.execute(statement, row)
            return time.perf_counter() - started
        finally:
            conn.close()

    def single_pipelined(self, table: str, rows: Sequence[Row]) -> float:
        conn = self._connect()
        try:
            started = time.perf_counter()
            conn.executemany(self._insert.format(table), self._params(rows))  # autocommit: a transaction per row
            return time.perf_counter() - started
        finally:
            conn.close()

    def single_threads(self, table: str, rows_per_thread: Sequence[Sequence[Row]]) -> float:
        statement = self._insert.format(table)

        def job(rows: Sequence[Row]) -> Callable[[threading.Barrier], None]:
            def run(barrier: threading.Barrier) -> None:
                conn = self._connect()
                try:
                    barrier.wait()
                    for row in self._params(rows):
                        conn.execute(statement, row)
                finally:
                    conn.close()

            return run

        return timed_threads([job(rows) for rows in rows_per_thread])

    def teardown(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute(f"DROP TABLE IF EXISTS {self.durable}")
        finally:
            conn.close()


@dataclass(frozen=True)
class Baselines:
    """Rows per second, for the scratch and the durable table."""

    bulk: dict[str, float]
    single: dict[str, float]
    pipelined: dict[str, float]
    threads: dict[str, float]


def measure_baselines(driver: RawDriver, events: Events, config: Config) -> Baselines:
    driver.setup()
    bulk: dict[str, list[float]] = {"scratch": [], "durable": []}
    single: dict[str, list[float]] = {"scratch": [], "durable": []}
    pipelined: dict[str, list[float]] = {"scratch": [], "durable": []}
    threads: dict[str, list[float]] = {"scratch": [], "durable": []}
    session_id = 0
    for rep in range(config.reps):
        progress(f"baselines, repetition {rep + 1}/{config.reps}")
        for kind, table in (("scratch", driver.scratch), ("durable", driver.durable)):
            session_id += 1
            rows = events.rows(session_id, config.baseline_rows)
            bulk[kind].append(len(rows) / driver.bulk(table, rows))
            session_id += 1
            rows = events.rows(session_id, config.single_rows)
            single[kind].append(len(rows) / driver.single(table, rows))
            session_id += 1
            rows = events.rows(session_id, config.single_rows)
            pipelined[kind].append(len(rows) / driver.single_pipelined(table, rows))
            per_thread = []
            for _ in range(THREADS):
                session_id += 1
                per_thread.append(events.rows(session_id, config.single_rows // THREADS))
            total = sum(len(rows) for rows in per_thread)
            threads[kind].append(total / driver.single_threads(table, per_thread))
    driver.teardown()

    def medians(samples: dict[str, list[float]]) -> dict[str, float]:
        return {kind: median(values) for kind, values in samples.items()}

    return Baselines(medians(bulk), medians(single), medians(pipelined), medians(threads))


# --------------------------------------------------------------------------- the application


@dataclass
class AppFigures:
    batch_eps: float = 0.0
    single_eps: float = 0.0
    single_p50_ms: float = 0.0
    single_p99_ms: float = 0.0
    threads_eps: float = 0.0
    shared_eps: float = 0.0
    shared_retries: int = 0
    projection_eps: float = 0.0
    projection_events: int = 0


def measure_batches(service: Service, events: Events, config: Config) -> float:
    rates = []
    for rep in range(config.reps):
        progress(f"handle_events, repetition {rep + 1}/{config.reps}")
        session = service.sessions.create_session(SCOPE)
        batches = [events.raw(BATCH) for _ in range(config.app_batches)]
        started = time.perf_counter()
        for batch in batches:
            handled = service.sessions.handle_events(SCOPE, session.number, batch)
            assert handled.new_event_count == BATCH
        rates.append(BATCH * len(batches) / (time.perf_counter() - started))
    return median(rates)


def measure_single(service: Service, events: Events, config: Config, figures: AppFigures) -> None:
    rates = []
    latencies: list[float] = []
    for rep in range(config.reps):
        progress(f"handle_event, repetition {rep + 1}/{config.reps}")
        session = service.sessions.create_session(SCOPE)
        raw = events.raw(config.single_rows)
        started = time.perf_counter()
        for fields in raw:
            before = time.perf_counter()
            service.sessions.handle_event(SCOPE, session.number, fields)
            latencies.append(time.perf_counter() - before)
        rates.append(len(raw) / (time.perf_counter() - started))
    latencies.sort()
    figures.single_eps = median(rates)
    figures.single_p50_ms = 1000 * latencies[len(latencies) // 2]
    figures.single_p99_ms = 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]

    def writer(number: int, raw: list[dict[str, bytes]]) -> Callable[[threading.Barrier], None]:
        def run(barrier: threading.Barrier) -> None:
            barrier.wait()
            for fields in raw:
                service.sessions.handle_event(SCOPE, number, fields)

        return run

    per_thread = config.single_rows // THREADS
    own_rates, shared_rates = [], []
    retries = 0
    retry_lock = threading.Lock()
    real_sleep = service.sessions._sleep

    def counting_sleep(seconds: float) -> None:
        nonlocal retries
        with retry_lock:
            retries += 1
        real_sleep(seconds)

    for rep in range(config.reps):
        progress(f"handle_event from {THREADS} threads, repetition {rep + 1}/{config.reps}")
        numbers = [service.sessions.create_session(SCOPE).number for _ in range(THREADS)]
        jobs = [writer(number, events.raw(per_thread)) for number in numbers]
        own_rates.append(per_thread * THREADS / timed_threads(jobs))

        shared = service.sessions.create_session(SCOPE).number
        jobs = [writer(shared, events.raw(per_thread)) for _ in range(THREADS)]
        service.sessions._sleep = counting_sleep
        try:
            shared_rates.append(per_thread * THREADS / timed_threads(jobs))
        finally:
            service.sessions._sleep = real_sleep
        assert service.sessions.get_session(SCOPE, shared).event_count == per_thread * THREADS
    figures.threads_eps = median(own_rates)
    figures.shared_eps = median(shared_rates)
    figures.shared_retries = retries


@dataclass
class Growth:
    long_events: int = 0
    build_window: int = 0  # batches at each end of the build compared below
    build_first_ms: float = 0.0  # median of the first `build_window` batches that built the long session
    build_last_ms: float = 0.0  # median of the last `build_window`
    warm_long_ms: float = 0.0
    warm_fresh_ms: float = 0.0
    dedupe_long_ms: float = 0.0  # recorded_event_ids for 1000 new ids, warm
    dedupe_fresh_ms: float = 0.0
    cold_long_ms: float = 0.0
    cold_fresh_ms: float = 0.0
    load_long_ms: float = 0.0
    load_fresh_ms: float = 0.0
    tail: int = 0
    tail_long_ms: float = 0.0
    tail_short_ms: float = 0.0
    snapshot_note: str = ""
    bootstrap_ms: float = 0.0


@contextmanager
def second_process(settings: StoreSettings, bootstrap_times: list[float]) -> Iterator[Service]:
    """A brand-new service (own pool, empty aggregate cache), as another process would have,
    with its connection pool already filled so that connecting is not timed."""
    started = time.perf_counter()
    service = bootstrap(Settings(database=settings), run_projection=False)
    bootstrap_times.append(time.perf_counter() - started)
    try:
        service.database.fetch_all("SELECT 1 AS one")
        if settings.kind == "postgres":
            service.database.datastore.pool.wait(timeout=30)  # type: ignore[union-attr]
        yield service
    finally:
        service.close()


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - started)


def snapshot_state(service: Service, number: int) -> tuple[int, int]:
    """(session version, version of its latest snapshot or 0)."""
    version = service.sessions.get_session(SCOPE, number).version
    assert service.log.snapshots is not None
    latest = list(service.log.snapshots.get(Session.create_id(number), desc=True, limit=1))
    return version, latest[0].originator_version if latest else 0


def measure_growth(service: Service, settings: StoreSettings, events: Events, config: Config) -> Growth:
    growth = Growth()
    sessions = service.sessions
    long = sessions.create_session(SCOPE).number
    build_ms = []
    for index in range(config.long_batches):
        if index % 10 == 0:
            progress(f"building the long session: batch {index + 1}/{config.long_batches}")
        batch = events.raw(BATCH)
        build_ms.append(timed(lambda batch=batch: sessions.handle_events(SCOPE, long, batch)))
    growth.long_events = sessions.get_session(SCOPE, long).event_count
    assert growth.long_events == config.long_batches * BATCH
    growth.build_window = window = max(1, min(10, len(build_ms) // 2))
    growth.build_first_ms = median(build_ms[:window])
    growth.build_last_ms = median(build_ms[-window:])

    def append(target: Service, number: int) -> float:
        batch = events.raw(BATCH)
        return timed(lambda: target.sessions.handle_events(SCOPE, number, batch))

    # One step of handle_events on its own: the idempotency check (`recorded_event_ids`) for a
    # batch of new ids, which reads the store's index of the ids each session has recorded.
    store = EventSourcedSessionStore(service.log, service.database)

    def dedupe(number: int) -> float:
        ids = [uuid.uuid4() for _ in range(BATCH)]
        return timed(lambda: store.recorded_event_ids(number, ids))

    warm_long, warm_fresh, dedupe_long, dedupe_fresh = [], [], [], []
    for rep in range(max(9, config.growth_reps)):
        fresh = sessions.create_session(SCOPE).number  # just saved here: in this service's cache
        if rep % 2:
            warm_fresh.append(append(service, fresh))
            warm_long.append(append(service, long))
        else:
            warm_long.append(append(service, long))
            warm_fresh.append(append(service, fresh))
        dedupe_long.append(dedupe(long))
        dedupe_fresh.append(dedupe(fresh))
    growth.dedupe_long_ms, growth.dedupe_fresh_ms = median(dedupe_long), median(dedupe_fresh)

    version, snapshot = snapshot_state(service, long)
    growth.snapshot_note = (
        f"long session before the cold runs: version {version}, latest snapshot at {snapshot}"
        f" (a cold load replays {version - snapshot} events after it)"
    )
    cold_long, cold_fresh, load_long, load_fresh, boots = [], [], [], [], []
    for rep in range(config.growth_reps):
        progress(f"cold cache (new service), repetition {rep + 1}/{config.growth_reps}")
        fresh = sessions.create_session(SCOPE).number
        with second_process(settings, boots) as cold:
            if rep % 2:
                cold_fresh.append(append(cold, fresh))
                cold_long.append(append(cold, long))
            else:
                cold_long.append(append(cold, long))
                cold_fresh.append(append(cold, fresh))
        fresh = sessions.create_session(SCOPE).number
        with second_process(settings, boots) as cold:
            load_long.append(timed(lambda cold=cold: cold.sessions.get_session(SCOPE, long)))
            load_fresh.append(timed(lambda cold=cold, fresh=fresh: cold.sessions.get_session(SCOPE, fresh)))

    # Worst case for a cold load: the longest tail a snapshot can leave (saves crossing a multiple
    # of SNAPSHOT_INTERVAL snapshot the session, so just short of the next multiple), compared
    # with a short session of about the same number of events and no snapshot at all.
    version, snapshot = snapshot_state(service, long)
    growth.tail = SNAPSHOT_INTERVAL - 1 - version % SNAPSHOT_INTERVAL
    if growth.tail > 0:
        sessions.handle_events(SCOPE, long, events.raw(growth.tail))
        short = sessions.create_session(SCOPE).number
        sessions.handle_events(SCOPE, short, events.raw(version - snapshot + growth.tail))
        version, snapshot = snapshot_state(service, long)
        short_version, short_snapshot = snapshot_state(service, short)
        growth.tail = version - snapshot
        assert short_snapshot == 0, "the short session should have no snapshot"
        growth.snapshot_note += (
            f"; tail case: long v{version} replays {version - snapshot} after its snapshot,"
            f" short v{short_version} replays {short_version} from scratch"
        )
        tail_long, tail_short = [], []
        for _ in range(config.growth_reps):
            with second_process(settings, boots) as cold:
                tail_long.append(timed(lambda cold=cold: cold.sessions.get_session(SCOPE, long)))
                tail_short.append(timed(lambda cold=cold: cold.sessions.get_session(SCOPE, short)))
        growth.tail_long_ms, growth.tail_short_ms = median(tail_long), median(tail_short)

    growth.warm_long_ms, growth.warm_fresh_ms = median(warm_long), median(warm_fresh)
    growth.cold_long_ms, growth.cold_fresh_ms = median(cold_long), median(cold_fresh)
    growth.load_long_ms, growth.load_fresh_ms = median(load_long), median(load_fresh)
    growth.bootstrap_ms = 1000 * median(boots)
    return growth


def measure_projection(service: Service, figures: AppFigures) -> None:
    progress("projection catch-up")
    assert service.projection.position() == 0, "the projection must not have run yet"
    started = time.perf_counter()
    service.projection.catch_up()
    elapsed = time.perf_counter() - started
    consumed = service.projection.position()  # log events passed (sessions started and events recorded)
    assert consumed > 0
    projected = service.database.fetch_all("SELECT count(*) AS n FROM session_events")[0]["n"]
    recorded = sum(
        session.event_count
        for session in (
            service.sessions.get_session(SCOPE, int(row["number"]))
            for row in service.database.fetch_all("SELECT number FROM session_directory")
        )
    )
    assert projected == recorded, f"projected {projected} rows, sessions recorded {recorded} events"
    figures.projection_events = consumed
    figures.projection_eps = consumed / elapsed


# --------------------------------------------------------------------------- the database


@contextmanager
def scratch_database(url: str) -> Iterator[StoreSettings]:
    """A new, empty database (PostgreSQL) or file (SQLite), removed afterwards."""
    settings = StoreSettings.from_url(url)
    name = f"bench_{os.getpid()}"
    if settings.kind == "sqlite":
        if settings.sqlite_path == ":memory:":
            raise SystemExit("an in-memory SQLite database cannot be shared by the services; give a file path")
        given = Path(settings.sqlite_path)
        path = given.with_name(f"{given.stem}.{name}.db")
        try:
            yield replace(settings, sqlite_path=str(path))
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
        return

    def admin() -> psycopg.Connection[Any]:
        last: Exception | None = None
        for dbname in ("postgres", settings.dbname):
            try:
                return psycopg.connect(
                    host=settings.host,
                    port=settings.port,
                    user=settings.user,
                    password=settings.password,
                    dbname=dbname,
                    autocommit=True,
                    connect_timeout=10,
                )
            except psycopg.OperationalError as error:
                last = error
        assert last is not None
        raise last

    with admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield replace(settings, dbname=name)
    finally:
        with admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def describe_environment(settings: StoreSettings) -> list[str]:
    lines = [
        f"store: {settings.describe()}",
        f"python {platform.python_version()}, eventsourcing {package_version('eventsourcing')},"
        f" psycopg {package_version('psycopg')}, {os.cpu_count()} CPUs",
        f"application code imported from {Path(sys.modules[SessionService.__module__].__file__ or '?').parent.parent}",
    ]
    if settings.kind == "postgres":
        with psycopg.connect(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password,
            dbname=settings.dbname,
        ) as conn:
            values = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
            }
        lines.append("server: " + ", ".join(f"{name}={value}" for name, value in values.items()))
    else:
        lines.append(f"sqlite {sqlite3.sqlite_version}, WAL, default synchronous")
    return lines


# --------------------------------------------------------------------------- the report


def rate(value: float) -> str:
    return f"{value:,.0f}"


def ratio(value: float, base: float) -> str:
    return f"{value / base:.3f}" if base else "-"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))])

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def report(kind: str, config: Config, base: Baselines, app: AppFigures, growth: Growth) -> None:
    scratch = "UNLOGGED table" if kind == "postgres" else "TEMP table"
    durable = "logged table" if kind == "postgres" else "main-db table"
    # psycopg 3 pipelines executemany(): in autocommit mode the rows share one implicit
    # transaction (one Sync), so it is no single-row-transaction baseline; SQLite's is.
    pipelined = "executemany, autocommit = 1 implicit txn" if kind == "postgres" else "executemany, autocommit"
    bulk_name = "COPY" if kind == "postgres" else "executemany"

    def against(value: float, baseline: dict[str, float]) -> list[str]:
        return [ratio(value, baseline["scratch"]), ratio(value, baseline["durable"])]

    rows = [
        [f"baseline: {bulk_name}, 1000 rows/txn, {scratch}", rate(base.bulk["scratch"]), "rows/s", "1", "-"],
        [f"baseline: {bulk_name}, 1000 rows/txn, {durable}", rate(base.bulk["durable"]), "rows/s", "-", "1"],
        [
            f"app: handle_events, {BATCH} events/call",
            rate(app.batch_eps),
            "events/s",
            *against(app.batch_eps, base.bulk),
        ],
        [
            "app: projection catch_up (read model)",
            rate(app.projection_eps),
            "events/s",
            *against(app.projection_eps, base.bulk),
        ],
        [f"baseline: 1 row/txn, sequential, {scratch}", rate(base.single["scratch"]), "rows/s", "1", "-"],
        [f"baseline: 1 row/txn, sequential, {durable}", rate(base.single["durable"]), "rows/s", "-", "1"],
        [
            f"  ({pipelined}, {scratch})",
            rate(base.pipelined["scratch"]),
            "rows/s",
            *against(base.pipelined["scratch"], base.single),
        ],
        [
            f"  ({pipelined}, {durable})",
            rate(base.pipelined["durable"]),
            "rows/s",
            *against(base.pipelined["durable"], base.single),
        ],
        ["app: handle_event, sequential", rate(app.single_eps), "events/s", *against(app.single_eps, base.single)],
        [f"baseline: 1 row/txn, {THREADS} threads, {scratch}", rate(base.threads["scratch"]), "rows/s", "1", "-"],
        [f"baseline: 1 row/txn, {THREADS} threads, {durable}", rate(base.threads["durable"]), "rows/s", "-", "1"],
        [
            f"app: handle_event, {THREADS} threads, own sessions",
            rate(app.threads_eps),
            "events/s",
            *against(app.threads_eps, base.threads),
        ],
        [
            f"app: handle_event, {THREADS} threads, one session",
            rate(app.shared_eps),
            "events/s",
            *against(app.shared_eps, base.threads),
        ],
    ]
    print_table(
        "Write throughput (median of repetitions; ratio = figure / baseline, 1 = as fast as the bare driver)",
        ["measurement", "value", "unit", "vs scratch", "vs durable"],
        rows,
    )
    print(
        f"handle_event latency: p50 {app.single_p50_ms:.2f} ms, p99 {app.single_p99_ms:.2f} ms;"
        f" optimistic-concurrency retries with {THREADS} threads on one session: {app.shared_retries}"
        f" over {config.reps * (config.single_rows // THREADS) * THREADS} events;"
        f" projection consumed {app.projection_events:,} log notifications"
    )

    growth_rows = [
        ["warm cache: handle_events", f"{growth.warm_long_ms:.1f}", f"{growth.warm_fresh_ms:.1f}"],
        [
            "  step: recorded_event_ids (dedupe query)",
            f"{growth.dedupe_long_ms:.1f}",
            f"{growth.dedupe_fresh_ms:.1f}",
        ],
        ["cold cache (new service): handle_events", f"{growth.cold_long_ms:.1f}", f"{growth.cold_fresh_ms:.1f}"],
        ["cold cache: get_session (load only)", f"{growth.load_long_ms:.1f}", f"{growth.load_fresh_ms:.1f}"],
    ]
    if growth.tail > 0:
        growth_rows.append(
            [
                f"cold load, {growth.tail}-event tail vs no snapshot",
                f"{growth.tail_long_ms:.1f}",
                f"{growth.tail_short_ms:.1f}",
            ]
        )
    for row in growth_rows:
        row.append(ratio(float(row[1]), float(row[2])))
    print_table(
        f"Long session ({growth.long_events:,} events) vs fresh session: a {BATCH}-event batch, ms (median)",
        ["measurement", "long ms", "fresh ms", "long/fresh"],
        growth_rows,
    )
    print(
        f"building the long session: median batch {growth.build_first_ms:.1f} ms"
        f" (first {growth.build_window} batches),"
        f" {growth.build_last_ms:.1f} ms (last {growth.build_window});"
        f" bootstrap of a new service {growth.bootstrap_ms:.0f} ms"
    )
    print(growth.snapshot_note)


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"server (PostgreSQL: a bench_<pid> database is created on it) or file location (SQLite:"
        f" a new file beside it is used); default {DEFAULT_URL}",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (seconds, for a smoke test)")
    args = parser.parse_args(argv)
    config = Config.for_mode(quick=args.quick)
    logging.basicConfig(level=logging.WARNING)

    started = time.perf_counter()
    events = Events()
    with scratch_database(args.database_url) as settings:
        print("\n".join(describe_environment(settings)))
        print(f"mode: {'quick' if args.quick else 'default'} {config}")
        driver: RawDriver = (
            PostgresDriver(settings) if settings.kind == "postgres" else SQLiteDriver(settings.sqlite_path)
        )
        baselines = measure_baselines(driver, events, config)
        service = bootstrap(Settings(database=settings), run_projection=False)
        try:
            figures = AppFigures()
            figures.batch_eps = measure_batches(service, events, config)
            measure_single(service, events, config, figures)
            growth = measure_growth(service, settings, events, config)
            measure_projection(service, figures)
        finally:
            service.close()
        report(settings.kind, config, baselines, figures, growth)
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
