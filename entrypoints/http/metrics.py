"""Prometheus metrics: what is counted, and `GET /metrics` (no token) that exposes it.

The counters live in this process and, under `session-events serve`, in the multiprocess
directory `PROMETHEUS_MULTIPROC_DIR` that `serve` creates before the workers start (ADR 0012):
a scrape, whichever worker answers it, sums every worker's files. The projection gauges are not
counted anywhere: the answering process reads them from the store at scrape time (a few small
queries), so they are the same whoever answers.

This module must be imported only after `serve` has set `PROMETHEUS_MULTIPROC_DIR` (the client
library reads it at import): the command line imports the HTTP layer inside `serve` only."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from litestar import Response, get
from litestar.di import Provide
from litestar.openapi import ResponseSpec
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as exposition
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from adapters.readmodel.projection import FAILED, LIVE, REBUILDING, ProjectionStatus
from application.group_commit import GroupSaved
from entrypoints.http.providers import Wired, provide_service

PREFIX = "session_events"
UNMATCHED = "<unmatched>"
"""The `route` label of a request no route matched: raw paths never become labels."""

REQUESTS = Counter(
    f"{PREFIX}_http_requests", "HTTP requests and WebSocket connections answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer an HTTP request (for a live stream: how long it stayed open)",
    ["method", "route", "status"],
)
EVENTS_RECORDED = Counter(f"{PREFIX}_events_recorded", "Events newly recorded")
EVENTS_DUPLICATE = Counter(
    f"{PREFIX}_events_duplicate", "Events sent again with an id the session had recorded: not recorded twice"
)
RECORDING_CALLS = Counter(f"{PREFIX}_recording_calls", "Successful recording calls, by kind", ["kind"])
SESSIONS_ERASED = Counter(f"{PREFIX}_sessions_erased", "Sessions erased by DELETE /api/sessions/{id}")
OPEN_STREAMS = Gauge(
    f"{PREFIX}_open_streams",
    "Live-notification streams open now, by transport",
    ["transport"],
    multiprocess_mode="livesum",
)
POOL_CONNECTIONS = Gauge(
    f"{PREFIX}_db_pool_connections",
    "PostgreSQL pool connections (in_use, idle) as each process last saw them after a request (at most every 0.25 s)",
    ["state"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    f"{PREFIX}_db_pool_waiting",
    "Requests waiting for a PostgreSQL pool connection as each process last saw them after a request"
    " (at most every 0.25 s)",
    multiprocess_mode="livesum",
)
GROUP_CALLS = Histogram(
    f"{PREFIX}_group_commit_calls",
    "Recording calls saved together in one transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
GROUP_EVENTS = Histogram(
    f"{PREFIX}_group_commit_events",
    "Events saved in one transaction (group commit)",
    buckets=(1, 10, 100, 500, 1000, 2000, 5000),
)
GROUP_CONFLICTS = Counter(
    f"{PREFIX}_group_commit_conflicts",
    "Sessions left out of a transaction because another process had saved them first (decided again)",
)
STATES = (LIVE, FAILED, REBUILDING)

for transport in ("sse", "websocket"):
    OPEN_STREAMS.labels(transport)  # exposed as 0 before the first stream opens
for kind in ("single", "batch"):
    RECORDING_CALLS.labels(kind)


def recorded(kind: str, submitted: int, new: int) -> None:
    """A recording call succeeded: `submitted` events were sent, `new` of them were recorded."""
    RECORDING_CALLS.labels(kind).inc()
    EVENTS_RECORDED.inc(new)
    EVENTS_DUPLICATE.inc(submitted - new)


def group_saved(group: GroupSaved) -> None:
    """A transaction of the committer: how many calls and events it carried, and conflicts met."""
    GROUP_CALLS.observe(group.calls)
    GROUP_EVENTS.observe(group.events)
    GROUP_CONFLICTS.inc(group.conflicts)


def erased() -> None:
    """A session was erased through the API (`sessions prune` runs outside the server)."""
    SESSIONS_ERASED.inc()


@contextmanager
def open_stream(transport: str) -> Iterator[None]:
    gauge = OPEN_STREAMS.labels(transport)
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


POOL_EVERY = 0.25
"""Seconds between refreshes of the pool gauges: each write to a multiprocess metric costs a
system call, and a scrape every few seconds needs no fresher figure."""
_pool_seen = [0.0]


def pool_usage(stats: Callable[[], dict[str, int] | None]) -> None:
    """Refreshes the pool gauges from this process's pool (a dictionary read, under a lock), at
    most every `POOL_EVERY` seconds."""
    now = time.monotonic()
    if now - _pool_seen[0] < POOL_EVERY:
        return
    _pool_seen[0] = now
    usage = stats()
    if usage is None:
        return
    POOL_CONNECTIONS.labels("in_use").set(usage["in_use"])
    POOL_CONNECTIONS.labels("idle").set(usage["idle"])
    POOL_WAITING.set(usage["waiting"])


class ProjectionGauges(Collector):
    """Each projection's position, lag and state, read when scraped."""

    def __init__(self, statuses: Callable[[], Sequence[ProjectionStatus]]) -> None:
        self._statuses = statuses

    def collect(self) -> Iterable[Metric]:
        position = GaugeMetricFamily(
            f"{PREFIX}_projection_position", "Last event-log position the projection has applied", labels=["projection"]
        )
        head = GaugeMetricFamily(f"{PREFIX}_projection_log_head", "Event-log head it is behind", labels=["projection"])
        behind = GaugeMetricFamily(
            f"{PREFIX}_projection_behind_events", "Events recorded but not yet projected", labels=["projection"]
        )
        seconds = GaugeMetricFamily(
            f"{PREFIX}_projection_behind_seconds",
            "Age of the oldest event not yet projected (0 when caught up)",
            labels=["projection"],
        )
        state = GaugeMetricFamily(
            f"{PREFIX}_projection_state",
            "1 for the projection's current state, 0 otherwise",
            labels=["projection", "state"],
        )
        for status in self._statuses():
            position.add_metric([status.name], status.position)
            head.add_metric([status.name], status.head)
            behind.add_metric([status.name], status.behind)
            seconds.add_metric([status.name], status.seconds_behind)
            for name in STATES:
                state.add_metric([status.name, name], 1.0 if status.state == name else 0.0)
        yield from (position, head, behind, seconds, state)


class _Counted(Collector):
    """This process's own metrics (no multiprocess directory: one process serves)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape(statuses: Callable[[], Sequence[ProjectionStatus]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_Counted())
    registry.register(ProjectionGauges(statuses))
    return exposition(registry)


@get(
    "/metrics",
    summary="Prometheus metrics",
    description="Prometheus text format, summed over every worker process: requests by route template and "
    "status with latency histograms, events recorded (duplicates apart), recording calls by kind, calls and "
    "events per transaction (group commit) and conflicts, sessions erased, each "
    "projection's position, lag and state, open live-notification streams and PostgreSQL pool usage. "
    "No token: expose it only where the scraper can reach it.",
    tags=["health"],
    dependencies={"service": Provide(provide_service, sync_to_thread=False)},
    responses={200: ResponseSpec(str, media_type=CONTENT_TYPE_LATEST, description="The metrics.")},
    media_type=CONTENT_TYPE_LATEST,
    sync_to_thread=True,
)
def metrics(service: Wired) -> Response[bytes]:
    return Response(scrape(service.projection_statuses), media_type=CONTENT_TYPE_LATEST)
