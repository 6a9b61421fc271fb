"""Case 5: the lag from a POST's answer to its `session_events` notification on `GET
/api/stream`, under sustained load: 4 single-event writers paced to half the 4-client
throughput case 2 measured (or a short probe of it), plus a writer of 100-event batches.

Each writer has a session of its own and calls one after another, so the k-th notification of a
session belongs to its k-th call: every call is matched to its notification, and any missing
one is counted. The lag can be negative: the service may notify before the writer has read its
answer. On PostgreSQL the baseline is raw `LISTEN`/`NOTIFY`: the lag from a committed
`INSERT` + `NOTIFY` to its arrival on another connection, at the same pace."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

import psycopg

from bench import baselines
from bench.cases import CaseResult, Context, progress, timed_case
from bench.events import EventFactory
from bench.load import Connection, Job, posting, run_clients
from bench.sse import Notification, StreamReader
from bench.stats import Check, Summary, percentile
from bench.stores import Store

WRITERS = 4
BATCH = 100


@timed_case
def run(context: Context) -> CaseResult:
    config, factory = context.config, EventFactory()
    result = CaseResult(5, "POST-to-notification lag under sustained load")
    with context.serving("lag", result) as (store, server, token):
        admin = Connection(server.port, token)
        throughput = context.learnt.get("single_events_per_second_4_clients")
        if throughput is None:
            throughput = probe(server.port, token, admin, factory, 40 if config.quick else 200)
            result.notes.append(f"case 2 did not run: a probe measured {throughput:,.0f} single events/s, 4 clients")
        rate = max(throughput / 2, 4.0)
        batch_interval = 0.5 if config.quick else 1.0
        progress(
            f"case 5: {rate:,.0f} single events/s and a {BATCH}-event batch every {batch_interval} s"
            f" for {config.lag_seconds:.0f} s"
        )
        stream = StreamReader(server.port, token)
        try:
            sessions = [admin.create_session() for _ in range(WRITERS + 1)]
            answered: dict[int, list[float]] = defaultdict(list)
            jobs = [
                paced(
                    server.port,
                    token,
                    s,
                    factory.single_body,
                    "/events",
                    WRITERS / rate,
                    config.lag_seconds,
                    answered[s],
                )
                for s in sessions[:WRITERS]
            ]
            jobs.append(
                paced(
                    server.port,
                    token,
                    sessions[-1],
                    lambda: factory.batch_body(BATCH),
                    "/events/batch",
                    batch_interval,
                    config.lag_seconds,
                    answered[sessions[-1]],
                )
            )
            load = run_clients(jobs)
            calls = sum(len(times) for times in answered.values())
            deadline = time.monotonic() + 15
            while len(stream.received()) < calls and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # anything unexpected (a duplicate) would show up here
            received = stream.received()
        finally:
            stream.close()
            admin.close()
        lags, missing, unexpected = match(
            answered, received, {s: 1 for s in sessions[:WRITERS]} | {sessions[-1]: BATCH}
        )
        baseline_lags = notify_lags(store, rate, min(config.lag_seconds, 10.0)) if store.kind == "postgres" else []

    result.figures["lag p50"] = Summary.of([1000 * percentile(lags, 50)], "ms") if lags else missing_figure()
    result.figures["lag p99"] = Summary.of([1000 * percentile(lags, 99)], "ms") if lags else missing_figure()
    result.figures["lag max"] = Summary.of([1000 * max(lags)], "ms") if lags else missing_figure()
    result.figures["notifications matched"] = Summary.of([len(lags)], "count")
    result.figures["notifications missing"] = Summary.of([missing], "count")
    result.figures["achieved write rate"] = Summary.of([calls / load.seconds], "calls/s")
    if baseline_lags:
        result.baseline["LISTEN/NOTIFY lag p50"] = Summary.of([1000 * percentile(baseline_lags, 50)], "ms")
        result.baseline["LISTEN/NOTIFY lag p99"] = Summary.of([1000 * percentile(baseline_lags, 99)], "ms")
    else:
        result.notes.append("SQLite has no raw notification channel to set beside it: no baseline")
    early = sum(1 for lag in lags if lag < 0)
    result.notes.append(
        f"{calls} calls ({len(answered) - 1} single-event writers paced to {rate:,.0f} events/s in all, 1 batch"
        f" writer) over {load.seconds:.1f} s;"
        f" {early} notifications arrived before their writer had read the answer; {unexpected} unexpected"
    )
    p99 = 1000 * percentile(lags, 99) if lags else float("nan")
    result.checks += [
        Check("POST-to-notification lag p99", p99, 150.0, "<=", goal=100.0, enforced=context.enforced, unit="ms"),
        Check(
            "notifications missing or unexpected", float(missing + unexpected), 0.0, "<=", enforced=True, unit="count"
        ),
    ]
    return result


def missing_figure() -> Summary:
    return Summary(float("nan"), float("nan"), float("nan"), 0, "ms")


def probe(port: int, token: str, admin: Connection, factory: EventFactory, events: int) -> float:
    sessions = [admin.create_session() for _ in range(WRITERS)]
    plans = [[(f"/api/sessions/{s}/events", factory.single_body()) for _ in range(events // WRITERS)] for s in sessions]
    run_ = run_clients([posting(port, token, plan) for plan in plans])
    return events // WRITERS * WRITERS / run_.seconds


def paced(
    port: int,
    token: str,
    session: int,
    make: Callable[[], bytes],
    route: str,
    interval: float,
    seconds: float,
    answered: list[float],
) -> Job:
    """A writer calling every `interval` s (sequentially: a late call goes at once, never two at
    a time), noting when each answer arrived."""

    def job(barrier: threading.Barrier) -> list[float]:
        connection = Connection(port, token)
        bodies = [make() for _ in range(int(seconds / interval) + 1)]
        try:
            connection.request("GET", "/health")
            barrier.wait()
            start = time.perf_counter()
            for n, payload in enumerate(bodies):
                delay = start + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                connection.post(f"/api/sessions/{session}{route}", payload)
                answered.append(time.perf_counter())
            return []
        finally:
            connection.close()

    return job


def match(
    answered: dict[int, list[float]], received: list[Notification], counts: dict[int, int]
) -> tuple[list[float], int, int]:
    """Pairs the k-th notification of each session with its k-th call: (lags, missing, unexpected)."""
    arrivals: dict[int, list[Notification]] = defaultdict(list)
    for notification in received:
        arrivals[notification.session_id].append(notification)
    lags: list[float] = []
    missing = unexpected = 0
    for session, times in answered.items():
        got = arrivals.pop(session, [])
        for answer, notification in zip(times, got, strict=False):
            if notification.event_count != counts[session]:
                unexpected += 1
            lags.append(notification.arrived - answer)
        missing += max(0, len(times) - len(got))
        unexpected += max(0, len(got) - len(times))
    unexpected += sum(len(rest) for rest in arrivals.values())
    return lags, missing, unexpected


def notify_lags(store: Store, rate: float, seconds: float) -> list[float]:
    """Raw PostgreSQL: an autocommit INSERT + NOTIFY per call from one writer at `rate`, and the
    time from its commit returning to the notification's arrival on a listening connection."""
    baselines.for_store(store)  # the plain table exists
    committed: dict[str, float] = {}
    arrived: dict[str, float] = {}
    calls = max(1, int(rate * seconds))
    with psycopg.connect(store.url, autocommit=True) as listener:
        listener.execute("LISTEN bench_lag")

        def listen() -> None:
            for notify in listener.notifies(timeout=seconds + 10, stop_after=calls):
                arrived[notify.payload] = time.perf_counter()

        thread = threading.Thread(target=listen, daemon=True)
        thread.start()
        with psycopg.connect(store.url) as writer:
            start = time.perf_counter()
            for n in range(calls):
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                with writer.transaction():
                    writer.execute(
                        f"INSERT INTO {baselines.TABLE} (session_id, sequence, data) VALUES (%s, %s, '{{}}')",
                        (10**9, n),
                    )
                    writer.execute("SELECT pg_notify('bench_lag', %s)", (str(n),))
                committed[str(n)] = time.perf_counter()
        thread.join(seconds + 15)
    return [arrived[key] - committed[key] for key in committed if key in arrived]
