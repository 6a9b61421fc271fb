"""`GET /metrics` on a real server: exact counts summed over worker processes, projection gauges
read at scrape time, and the open-streams gauge following a stream's life."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets.sync.client
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from application.scope import Scope
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres
from tests.factories import wire_event

EVENTS_ROUTE = "/api/sessions/{session_id}/events"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(server: ServerProcess) -> Samples:
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)  # no token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the metrics never showed it")
        time.sleep(0.1)


def worker_metrics_dir(server: ServerProcess) -> Path:
    """The multiprocess directory `serve` gave its workers, read from a worker's environment."""
    pid = server._process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        for entry in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            if entry.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(entry.split(b"=", 1)[1].decode())
    raise AssertionError("no worker with PROMETHEUS_MULTIPROC_DIR")


def per_worker(directory: Path, scratch: Path) -> dict[str, Samples]:
    """Each worker's own counts: its files alone, read by the client library."""
    by_pid: dict[str, list[Path]] = {}
    for file in directory.glob("*.db"):
        by_pid.setdefault(file.stem.rsplit("_", 1)[1], []).append(file)
    found = {}
    for pid, files in by_pid.items():
        alone = scratch / pid
        shutil.rmtree(alone, ignore_errors=True)
        alone.mkdir(parents=True)
        for file in files:
            shutil.copy(file, alone / file.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        found[pid] = {
            (s.name, frozenset(s.labels.items())): s.value for metric in registry.collect() for s in metric.samples
        }
    return found


class Traffic:
    """Recording calls, each on a new connection (so that they spread over the workers), and
    what the metrics must say about them."""

    def __init__(self, server: ServerProcess, scope: Scope) -> None:
        self.server = server
        self.headers = {"Authorization": f"Bearer {server.token(scope)}"}
        self.session_id = self.call("POST", "/api/sessions", {}).json()["data"]["id"]
        self.single = self.batch = self.new = self.duplicate = 0

    def call(self, method: str, path: str, body: object = None) -> httpx.Response:
        with httpx.Client(base_url=self.server.base_url, headers=self.headers, timeout=30) as client:
            return client.request(method, path, json=body)

    def round(self) -> None:
        events = f"/api/sessions/{self.session_id}/events"
        for _ in range(6):
            assert self.call("POST", events, wire_event(id=str(uuid.uuid4()))).status_code == 200
        again = str(uuid.uuid4())
        assert self.call("POST", events, wire_event(id=again)).status_code == 200
        assert self.call("POST", events, wire_event(id=again)).status_code == 200  # a duplicate
        batch = [wire_event(id=str(uuid.uuid4())) for _ in range(3)] + [wire_event(id=again)]
        answer = self.call("POST", f"{events}/batch", {"events": batch})
        assert answer.status_code == 200
        assert answer.json()["event_count"] == 3
        self.single += 8
        self.batch += 1
        self.new += 7 + 3
        self.duplicate += 1 + 1
        assert self.call("GET", "/api/sessions/987654321").status_code == 404

    def check(self, found: Samples) -> None:
        assert value(found, "session_events_http_requests_total", method="POST", route=EVENTS_ROUTE, status="200") == (
            self.single
        )
        histogram = "session_events_http_request_duration_seconds_count"
        assert value(found, histogram, method="POST", route=EVENTS_ROUTE, status="200") == self.single
        assert value(found, "session_events_recording_calls_total", kind="single") == self.single
        assert value(found, "session_events_recording_calls_total", kind="batch") == self.batch
        assert value(found, "session_events_events_recorded_total") == self.new
        assert value(found, "session_events_events_duplicate_total") == self.duplicate
        not_found = value(
            found, "session_events_http_requests_total", method="GET", route="/api/sessions/{session_id}", status="404"
        )
        assert not_found == self.batch  # one per round
        assert not any("987654321" in v for _, labels in found for _, v in labels)  # templates, never raw paths


def projections_caught_up(server: ServerProcess) -> bool:
    found = scrape(server)
    return all(
        value(found, "session_events_projection_position", projection=name)
        == value(found, "session_events_projection_log_head", projection=name)
        and value(found, "session_events_projection_behind_events", projection=name) == 0
        for name in ("session_events", "session_stats")
    )


def check_projection_gauges(server: ServerProcess, recorded: int) -> None:
    """Once caught up, each projection stands at the log's head, which holds every recorded event
    (and the session's creation)."""
    eventually(lambda: projections_caught_up(server))
    found = scrape(server)
    for name in ("session_events", "session_stats"):
        assert value(found, "session_events_projection_position", projection=name) > recorded
        assert value(found, "session_events_projection_state", projection=name, state="live") == 1
        assert value(found, "session_events_projection_state", projection=name, state="failed") == 0


def streams(server: ServerProcess, transport: str) -> float:
    return value(scrape(server), "session_events_open_streams", transport=transport)


def check_streams_gauge(server: ServerProcess, token: str) -> None:
    assert streams(server, "sse") == 0
    assert streams(server, "websocket") == 0
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", f"{server.base_url}/api/stream", headers=headers) as response,
    ):
        assert response.status_code == 200
        lines = response.iter_lines()  # kept: a generator dropped would close the response
        assert next(lines) == ": connected"
        eventually(lambda: streams(server, "sse") == 1)
    eventually(lambda: streams(server, "sse") == 0)

    ws_url = server.base_url.replace("http://", "ws://") + f"/api/ws?token={token}"
    with websockets.sync.client.connect(ws_url) as socket:
        socket.recv(timeout=30)  # the first keep-alive: subscribed
        eventually(lambda: streams(server, "websocket") == 1)
    eventually(lambda: streams(server, "websocket") == 0)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    require_postgres()
    with fresh_postgres_database() as url:
        yield url


def test_two_workers_on_postgres_are_summed_exactly(postgres_url: str, tmp_path: Path) -> None:
    server = ServerProcess(postgres_url, tmp_path, workers=2)
    try:
        traffic = Traffic(server, Scope(31, 32))
        directory = worker_metrics_dir(server)
        for _ in range(10):  # until both workers have recorded events
            traffic.round()
            workers = per_worker(directory, tmp_path / "per-worker")
            served = [value(w, "session_events_recording_calls_total", kind="single") for w in workers.values()]
            if len(served) == 2 and all(served):
                break
        else:
            raise AssertionError(f"requests never reached both workers: {served}")
        found = scrape(server)
        traffic.check(found)
        assert sum(served) == traffic.single
        check_projection_gauges(server, recorded=traffic.new)
        assert value(scrape(server), "session_events_db_pool_connections", state="idle") > 0
        check_streams_gauge(server, server.token(Scope(31, 32)))
    finally:
        server.stop()
    assert not directory.exists()  # removed at exit


def test_one_worker_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where `serve` makes its metrics directory
    server = ServerProcess(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, workers=1)
    assert len(list(tmp_path.glob("session-events-metrics-*"))) == 1
    try:
        traffic = Traffic(server, Scope(41, 42))
        traffic.round()
        traffic.round()
        traffic.check(scrape(server))
        check_projection_gauges(server, recorded=traffic.new)
        check_streams_gauge(server, server.token(Scope(41, 42)))
    finally:
        server.stop()
    assert not list(tmp_path.glob("session-events-metrics-*"))  # removed at exit


def test_metrics_need_no_token_and_are_documented(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'store.db'}", tmp_path)
    try:
        assert "session_events_open_streams" in httpx.get(f"{server.base_url}/metrics", timeout=30).text
        document = httpx.get(f"{server.base_url}/docs/openapi.json", timeout=30).json()
        operation = document["paths"]["/metrics"]["get"]
        assert "security" not in operation
    finally:
        server.stop()
