"""Filling a store through the service's own batch endpoint (cases 3, 4, 6 and 7): the log and
the read models then hold exactly what clients would have put there. Seeding is not timed."""

from __future__ import annotations

import threading
import time

from bench.events import EventFactory
from bench.load import Connection, Job, RequestFailed, run_clients

SEED_CLIENTS = 4


def create_sessions(port: int, token: str, count: int) -> list[int]:
    """`count` new sessions, created by 4 clients at once."""
    created: list[list[int]] = [[] for _ in range(SEED_CLIENTS)]

    def client(mine: list[int], how_many: int) -> Job:
        def job(barrier: threading.Barrier) -> list[float]:
            connection = Connection(port, token)
            try:
                barrier.wait()
                mine.extend(connection.create_session() for _ in range(how_many))
                return []
            finally:
                connection.close()

        return job

    shares = [count // SEED_CLIENTS + (1 if i < count % SEED_CLIENTS else 0) for i in range(SEED_CLIENTS)]
    run_clients([client(mine, n) for mine, n in zip(created, shares, strict=True) if n])
    return sorted(number for mine in created for number in mine)


def fill(
    port: int, token: str, factory: EventFactory, sessions: list[int], events_per_session: int, batch: int = 1000
) -> None:
    """Gives each session `events_per_session` more events, in batches of up to `batch`, from 4
    clients at once. Each client builds a body just before sending it, so that seeding a million
    events never holds them all in memory."""
    sizes = [min(batch, events_per_session - start) for start in range(0, events_per_session, batch)]

    def client(mine: list[int]) -> Job:
        def job(barrier: threading.Barrier) -> list[float]:
            connection = Connection(port, token)
            try:
                barrier.wait()
                for session in mine:
                    for size in sizes:
                        connection.post(f"/api/sessions/{session}/events/batch", factory.batch_body(size))
                return []
            finally:
                connection.close()

        return job

    run_clients([client(sessions[i::SEED_CLIENTS]) for i in range(SEED_CLIENTS)])


def sessions_with_events(
    port: int, token: str, factory: EventFactory, sessions: int, events_per_session: int
) -> list[int]:
    ids = create_sessions(port, token, sessions)
    fill(port, token, factory, ids, events_per_session)
    return ids


def wait_until_readable(port: int, token: str, session: int, timeout: float = 1800.0) -> float:
    """Waits until both read models have caught up with `session`'s events, and returns how long
    that took. Batch ingest can outrun the projections; a read then waits up to 5 s and answers
    503 if its read model is still behind. Reads are timed only once neither projection is busy."""
    started = time.perf_counter()
    client = Connection(port, token)
    try:
        for path in (f"/api/sessions/{session}/events?limit=1", f"/api/sessions/{session}/stats"):
            while True:
                try:
                    client.request("GET", path)
                    break
                except RequestFailed as failure:
                    if failure.status != 503 or time.perf_counter() - started > timeout:
                        raise
        return time.perf_counter() - started
    finally:
        client.close()
