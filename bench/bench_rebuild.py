"""Catch-up and rebuild rate of each read model (a script, not a test).

Writes N events (100 sessions, tool calls and results, errors) into a scratch store through the
service, with no projection running. Then, in each of `--repeat` rounds, for each read model:
- catch-up: its tables emptied and its position set back to 0, `Projector.catch_up()` projects
  the whole log (what a live projector does after an outage, or on a new read model's first start);
- rebuild: `Service.rebuild(name)`, blue/green, as `session-events projections rebuild` does;
and, in the same round, the baseline: the same `session_events` rows written raw into a table
with the same DDL (PostgreSQL: psycopg `COPY`, binary and text, 1,000 rows per `COPY`, one
transaction; SQLite: `executemany` in one transaction). Figures are medians over the rounds.

    python bench/bench_rebuild.py                                 # PostgreSQL, 100,000 events, 3 rounds
    python bench/bench_rebuild.py --store sqlite
    python bench/bench_rebuild.py --events 20000 --repeat 1       # quicker
    python bench/bench_rebuild.py --batch-size 5000               # log events per transaction

Once the log is written the start-up heap is frozen, as in `serve` and `projections rebuild`
(`entrypoints/heap.py`); `--no-freeze` leaves it to the garbage collector.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.database import schema
from adapters.database.url import DatabaseSettings
from application.scope import Scope
from application.validation import RawFields
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.heap import freeze_startup_heap
from entrypoints.settings import Settings

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SCOPE = Scope(1, 1)
COLUMNS = ("session_id", "sequence", "id", "event_type", "sent_at", "received_at", "data", "metadata", "position")
BINARY_TYPES = ("int8", "int8", "uuid", "text", "timestamptz", "timestamptz", "text", "text", "int8")
"""`json` travels as its text in binary COPY."""


def fields(k: int) -> dict[str, bytes]:
    kind = ("tool_called", "tool_result", "file_modified", "error_occurred")[k % 4]
    data = {
        "tool_called": f'{{"tool_name": "T{k % 7}", "tool_use_id": "u{k}", "args": {{"path": "src/{k}.py"}}}}',
        "tool_result": f'{{"tool_use_id": "u{k - 1}", "success": {"true" if k % 3 else "false"}, "bytes": {k}}}',
        "file_modified": f'{{"path": "src/{k}.py", "lines": {k % 100}}}',
        "error_occurred": f'{{"message": "boom {k}"}}',
    }[kind]
    return {
        "event_type": f'"{kind}"'.encode(),
        "sent_at": f'"2026-01-01T{k // 3600 % 24:02d}:{k // 60 % 60:02d}:{k % 60:02d}.{k % 1000:03d}Z"'.encode(),
        "data": data.encode(),
    }


@contextmanager
def scratch_store(kind: str, server: str) -> Iterator[str]:
    """A new empty store, removed afterwards: its URL."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench_rebuild_") as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    name = f"bench_rebuild_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_log(service: Service, events: int) -> None:
    sessions = [service.sessions.create_session(SCOPE).number for _ in range(100)]
    started = time.perf_counter()
    for start in range(0, events, 1000):
        number = random.Random(start).choice(sessions)
        batch: list[RawFields] = [fields(k) for k in range(start, min(start + 1000, events))]
        service.sessions.handle_events(SCOPE, number, batch)
    written = time.perf_counter() - started
    print(f"{events:,} events written in {written:.1f} s ({events / written:,.0f}/s)", file=sys.stderr)


def reset(service: Service, name: str) -> None:
    """The read model as on its first start: empty tables, position 0."""
    db, projector = service.database, service.projectors[name]
    with db.transaction(commit=True) as cursor:
        for table in projector.model.tables:
            cursor.execute(f"TRUNCATE {table}" if db.name == "postgres" else f"DELETE FROM {table}")
        cursor.execute(
            db.statement("UPDATE projection_tracking SET position = 0, state = 'live', error = NULL WHERE name = %s"),
            (name,),
        )
    projector.progress.position = 0


def timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def baseline_table(service: Service) -> str:
    db = service.database
    with db.transaction(commit=True) as cursor:
        cursor.execute("DROP TABLE IF EXISTS copy_baseline")
        for statement in schema.projection_tables(db, "session_events", {"session_events": "copy_baseline"}):
            cursor.execute(statement)
    return "copy_baseline"


def baseline_postgres(url: str, rows: list[tuple[Any, ...]], binary: bool) -> float:
    copy = f"COPY copy_baseline ({', '.join(COLUMNS)}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    with psycopg.connect(url, autocommit=True) as conn:
        began = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            for chunk in range(0, len(rows), 1000):
                with cursor.copy(copy) as writer:
                    if binary:
                        writer.set_types(list(BINARY_TYPES))
                    for row in rows[chunk : chunk + 1000]:
                        writer.write_row(row)
        return time.perf_counter() - began


def baseline_sqlite(service: Service, rows: list[tuple[Any, ...]]) -> float:
    insert = f"INSERT INTO copy_baseline ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    began = time.perf_counter()
    with service.database.transaction(commit=True) as cursor:
        cursor.executemany(insert, rows)
    return time.perf_counter() - began


def summary(seconds: list[float], count: int) -> str:
    rates = sorted(count / s for s in seconds)
    return f"{statistics.median(rates):>9,.0f}/s (min {rates[0]:,.0f}, max {rates[-1]:,.0f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a PostgreSQL URL; a scratch database is made there")
    parser.add_argument("--batch-size", type=int, default=None, help="log events per transaction")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("catch-up", "rebuild"), default=None)
    parser.add_argument("--model", action="append", help="only this read model (repeatable; default: all)")
    parser.add_argument("--no-freeze", action="store_true", help="leave the start-up heap to the garbage collector")
    args = parser.parse_args()
    logging.getLogger("session_events.sessions").disabled = True  # a note for each error_occurred
    with scratch_store(args.store, args.server) as url:
        service = bootstrap(Settings(database=DatabaseSettings.from_url(url)), run_projection=False)
        try:
            write_log(service, args.events)
            if not args.no_freeze:
                freeze_startup_heap()  # as `serve` and `projections rebuild` do once built
            log_events = service.projection.head()
            names = args.model or list(service.projectors)
            if args.batch_size:
                for projector in service.projectors.values():
                    projector.batch_size = args.batch_size
            batch_size = service.projection.batch_size
            catch_up: dict[str, list[float]] = {name: [] for name in names}
            rebuild: dict[str, list[float]] = {name: [] for name in names}
            baselines: dict[str, list[float]] = {}
            service.projection.catch_up()  # untimed: it warms up, and the baseline writes the rows it makes
            data, metadata = service.database.json_text("data"), service.database.json_text("metadata")
            columns = ", ".join(COLUMNS).replace("data, metadata", f"{data}, {metadata}")
            rows = [
                tuple(row.values()) if isinstance(row, dict) else tuple(row)
                for row in service.database.fetch_all(f"SELECT {columns} FROM session_events")
            ]
            for round_ in range(args.repeat):
                for name in names if args.only != "rebuild" else ():
                    reset(service, name)
                    catch_up[name].append(timed(service.projectors[name].catch_up))
                    print(f"round {round_ + 1}: catch-up {name} {catch_up[name][-1]:.2f} s", file=sys.stderr)
                for name in names if args.only != "catch-up" else ():
                    rebuild[name].append(timed(lambda name=name: service.rebuild(name, batch_size=batch_size)))  # type: ignore[misc]
                    print(f"round {round_ + 1}: rebuild {name} {rebuild[name][-1]:.2f} s", file=sys.stderr)
                kinds = ("COPY binary", "COPY text") if args.store == "postgres" else ("executemany",)
                for kind in kinds:
                    baseline_table(service)
                    if args.store == "postgres":
                        seconds = baseline_postgres(url, rows, binary=kind == "COPY binary")
                    else:
                        seconds = baseline_sqlite(service, rows)
                    baselines.setdefault(kind, []).append(seconds)
        finally:
            service.close()
    references = {kind: statistics.median(len(rows) / s for s in seconds) for kind, seconds in baselines.items()}
    print(
        f"store: {args.store}; log: {log_events:,} log events ({len(rows):,} recorded events, 100 sessions);"
        f" batch size {batch_size}; median of {args.repeat}"
    )
    for kind, timings in baselines.items():
        print(f"baseline {kind:<22} {summary(timings, len(rows))} rows")
    for label, figures in (("catch-up", catch_up), ("rebuild", rebuild)):
        for name, timings in figures.items():
            if timings:
                rate = statistics.median(log_events / s for s in timings)
                ratios = ", ".join(f"{rate / reference:.2f}x {kind}" for kind, reference in references.items())
                print(f"{label:<8} {name:<22} {summary(timings, log_events)} log events  {ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
