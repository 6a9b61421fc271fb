"""Case 6: `GET /api/sessions/{id}/events` latency (p99) as the read model grows to 10k, 100k
and 1M rows, on sessions of the same size (1,000 events) each time.

A session's page should cost the same however many other sessions' rows the table holds; the
check is the p99 at the largest size against the p99 at the smallest. Four kinds of read take
turns: the first page, a later page (offset 800), `order=desc`, and an `event_type` filter.
Beside each size, the same queries straight on the database (the read model's own SQL, one
connection) show what the store alone takes."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.cases import CaseResult, Context, progress, seeding, timed_case
from bench.events import EventFactory
from bench.load import Connection
from bench.stats import Check, Summary, percentile, ratio
from bench.stores import Store

SESSION_EVENTS = 1000
SAMPLED_SESSIONS = 10
READS = {
    "first page": ("limit=100", "ASC", None, 0),
    "offset 800": ("limit=100&offset=800", "ASC", None, 800),
    "order=desc": ("order=desc&limit=100", "DESC", None, 0),
    "event_type filter": ("event_type=tool_result&limit=100", "ASC", "tool_result", 0),
}


@timed_case
def run(context: Context) -> CaseResult:
    config, factory = context.config, EventFactory()
    sizes = config.read_sizes
    result = CaseResult(
        6, "get_events p99 as the read model grows: " + ", ".join(f"{size:,}" for size in sizes) + " rows"
    )
    rng = random.Random(6)
    app_p99: dict[int, Summary] = {}
    with context.serving("reads", result) as (store, server, token):
        sessions: list[int] = []
        client = Connection(server.port, token)
        raw = raw_reader(store)
        try:
            for size in sizes:
                wanted = size // SESSION_EVENTS - len(sessions)
                progress(f"case 6: seeding to {size:,} rows ({wanted} more sessions of {SESSION_EVENTS:,} events)")
                sessions += seeding.sessions_with_events(server.port, token, factory, wanted, SESSION_EVENTS)
                behind = seeding.wait_until_readable(server.port, token, sessions[-1])
                sample = rng.sample(sessions, min(SAMPLED_SESSIONS, len(sessions)))
                timed_reads(client, sample, 2)  # warm-up, not counted
                app_p50s, app_p99s, raw_p99s = [], [], []
                per_kind: dict[str, list[float]] = {kind: [] for kind in READS}
                for _ in range(config.repetitions):
                    raw_p99s.append(1000 * percentile(raw_reads(raw, sample, config.read_requests), 99))
                    latencies = timed_reads(client, sample, config.read_requests)
                    everything = [lag for values in latencies.values() for lag in values]
                    app_p50s.append(1000 * percentile(everything, 50))
                    app_p99s.append(1000 * percentile(everything, 99))
                    for kind, values in latencies.items():
                        per_kind[kind].append(1000 * percentile(values, 99))
                result.figures[f"p50 at {size:,} rows"] = Summary.of(app_p50s, "ms")
                result.figures[f"p99 at {size:,} rows"] = app_p99[size] = Summary.of(app_p99s, "ms")
                result.baseline[f"the same SQL on one connection, p99 at {size:,} rows"] = Summary.of(raw_p99s, "ms")
                result.notes.append(
                    f"{size:,} rows: the read models caught up {behind:.1f} s after seeding ended; p99 by kind"
                    " (median of repetitions): "
                    + ", ".join(f"{kind} {Summary.of(values, 'ms').median:.1f} ms" for kind, values in per_kind.items())
                )
        finally:
            client.close()
            raw.close()
    smallest, largest = app_p99[sizes[0]], app_p99[sizes[-1]]
    result.checks.append(
        Check(
            f"get_events p99 at {sizes[-1]:,} rows / at {sizes[0]:,}",
            ratio(largest.median, smallest.median),
            1.5,
            "<=",
            enforced=context.enforced,
        )
    )
    result.notes.append(
        f"one client, sequential; {config.read_requests} requests of each kind per repetition, spread over"
        f" {SAMPLED_SESSIONS} sessions of {SESSION_EVENTS:,} events chosen at random"
    )
    return result


def timed_reads(client: Connection, sessions: list[int], per_kind: int) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = {kind: [] for kind in READS}
    for n in range(per_kind):
        session = sessions[n % len(sessions)]
        for kind, (query, _, _, _) in READS.items():
            started = time.perf_counter()
            client.request("GET", f"/api/sessions/{session}/events?{query}")
            latencies[kind].append(time.perf_counter() - started)
    return latencies


class RawReader:
    def __init__(
        self,
        execute: Callable[[str, tuple[Any, ...]], list[Any]],
        placeholder: str,
        json_text: str,
        close: Callable[[], None],
    ) -> None:
        self.execute, self.placeholder, self.json_text, self.close = execute, placeholder, json_text, close


def raw_reader(store: Store) -> RawReader:
    if store.kind == "postgres":
        conn = psycopg.connect(store.url, autocommit=True)
        return RawReader(lambda sql, params: conn.execute(sql, params).fetchall(), "%s", "{}::text", conn.close)
    lite = sqlite3.connect(store.sqlite_path, isolation_level=None)
    return RawReader(lambda sql, params: lite.execute(sql, params).fetchall(), "?", "{}", lite.close)


def raw_reads(raw: RawReader, sessions: list[int], per_kind: int) -> list[float]:
    """The read model's query, as `ReadModelEventViews.events` builds it, without the service."""
    p = raw.placeholder
    columns = (
        "id, session_id, sequence, event_type, sent_at, received_at, "
        f"{raw.json_text.format('data')} AS data, {raw.json_text.format('metadata')} AS metadata"
    )
    latencies = []
    for n in range(per_kind):
        session = sessions[n % len(sessions)]
        for _, direction, event_type, offset in READS.values():
            sql = f"SELECT {columns} FROM session_events WHERE session_id = {p}"
            params: tuple[Any, ...] = (session,)
            if event_type:
                sql += f" AND event_type = {p}"
                params += (event_type,)
            sql += f" ORDER BY sent_at {direction}, sequence {direction} LIMIT {p} OFFSET {p}"
            params += (100, offset)
            started = time.perf_counter()
            raw.execute(sql, params)
            latencies.append(time.perf_counter() - started)
    return latencies
