"""Rebuild rate of each read model (a script, not a test).

Writes N events (100 sessions, tool calls and results, errors) into a scratch database through
the service, then rebuilds each read model (blue/green, as `session-events projections rebuild`
does) and times it; beside it, the same `session_events` rows written with raw psycopg `COPY`
into a plain table, in the same run, as the baseline. PostgreSQL only (the baseline is `COPY`).

    python bench/bench_rebuild.py                      # 100,000 events
    python bench/bench_rebuild.py --events 20000       # quicker
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.database.url import DatabaseSettings
from application.queries import EventQuery
from application.scope import Scope
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SCOPE = Scope(1, 1)


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a PostgreSQL URL; a scratch database is made there")
    args = parser.parse_args()
    name = f"bench_rebuild_{os.getpid()}"
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.server.rsplit("/", 1)[0] + "/" + name
    try:
        service = bootstrap(Settings(database=DatabaseSettings.from_url(url)))
        try:
            sessions = [service.sessions.create_session(SCOPE).number for _ in range(100)]
            started = time.perf_counter()
            for start in range(0, args.events, 1000):
                number = random.Random(start).choice(sessions)
                batch = [fields(k) for k in range(start, min(start + 1000, args.events))]
                service.sessions.handle_events(SCOPE, number, batch)
            written = time.perf_counter() - started
            service.sessions.get_events(SCOPE, sessions[0], EventQuery())  # caught up
            service.sessions.get_stats(SCOPE, sessions[0])
            print(f"{args.events:,} events written in {written:.1f} s ({args.events / written:,.0f}/s)")
            log_events = service.projection.head()
            figures = {}
            for projection in service.projectors:
                began = time.perf_counter()
                service.rebuild(projection)
                figures[projection] = time.perf_counter() - began
            rows = service.database.fetch_all(
                "SELECT session_id, sequence, id, event_type, sent_at, received_at, data::text AS data,"
                " metadata::text AS metadata, position FROM session_events"
            )
        finally:
            service.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE copy_baseline (LIKE session_events INCLUDING ALL)")
            began = time.perf_counter()
            with conn.transaction(), conn.cursor() as cursor:
                for chunk in range(0, len(rows), 1000):
                    with cursor.copy(
                        "COPY copy_baseline (session_id, sequence, id, event_type, sent_at, received_at, data,"
                        " metadata, position) FROM STDIN"
                    ) as copy:
                        for row in rows[chunk : chunk + 1000]:
                            copy.write_row(tuple(row.values()))
            copy_seconds = time.perf_counter() - began
        copy_rate = len(rows) / copy_seconds
        print(f"log: {log_events:,} log events ({len(rows):,} recorded events, 100 sessions)")
        print(f"baseline: COPY of the same {len(rows):,} session_events rows: {copy_rate:,.0f} rows/s")
        for projection, seconds in figures.items():
            rate = log_events / seconds
            ratio = rate / copy_rate
            print(f"rebuild {projection:<15} {seconds:6.1f} s  {rate:>9,.0f} log events/s  {ratio:.2f}x COPY")
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
