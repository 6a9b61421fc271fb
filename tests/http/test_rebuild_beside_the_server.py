"""The real `session-events projections rebuild` beside a real server: HTTP reads of both read
models answer 200 with complete data throughout (the test fails if no read landed while the
rebuild was under way), and a rebuild killed with SIGKILL leaves the live models serving, its
leftovers removed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.readmodel.rebuild import GENERATION_MARK
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import ServerProcess, settings_for
from tests.factories import wire_event

EVENTS = 900


@dataclass
class Read:
    started: float
    ended: float
    events: int
    stats: dict[str, Any]


def rebuild_command(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "entrypoints.cli", "projections", "rebuild", "--quiet", *args],
        cwd=server.workdir,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def observer(server: ServerProcess) -> Iterator[Service]:
    watching = bootstrap(settings_for(server.env["DATABASE_URL"]), run_projection=False)
    yield watching
    watching.close()


def generations_under_way(observer: Service) -> list[str]:
    rows = observer.database.fetch_all("SELECT name FROM projection_tracking")
    return [row["name"] for row in rows if GENERATION_MARK in row["name"]]


def recorded_session(client: httpx.Client) -> int:
    number = client.post("/api/sessions", json={}).json()["data"]["id"]
    events = []
    for k in range(EVENTS):
        if k % 2 == 0:
            events.append(wire_event(event_type="tool_called", data={"tool_name": "Bash", "tool_use_id": f"u{k}"}))
        else:
            events.append(wire_event(event_type="tool_result", data={"tool_use_id": f"u{k - 1}", "success": True}))
    for start in range(0, EVENTS, 300):
        assert client.post(
            f"/api/sessions/{number}/events/batch", json={"events": events[start : start + 300]}
        ).is_success
    return number


def test_reads_answer_complete_throughout_a_rebuild_by_the_real_command(
    server: ServerProcess, client: httpx.Client, observer: Service
) -> None:
    number = recorded_session(client)
    expected_stats = client.get(f"/api/sessions/{number}/stats").json()["data"]
    assert expected_stats["tools"]["Bash"]["completed"] == EVENTS // 2

    reads: list[Read] = []
    windows: list[float] = []  # times at which a new generation was seen under way
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if generations_under_way(observer):
                windows.append(time.monotonic())
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    command = rebuild_command(server, "--batch-size", "20")
    try:
        while command.poll() is None:
            started = time.monotonic()
            events = client.get(f"/api/sessions/{number}/events", params={"limit": 1000})
            stats = client.get(f"/api/sessions/{number}/stats")
            assert events.status_code == 200, events.text
            assert stats.status_code == 200, stats.text
            reads.append(Read(started, time.monotonic(), len(events.json()["data"]), stats.json()["data"]))
    finally:
        finished.set()
        watcher.join()
    out, err = command.communicate()
    assert command.returncode == 0, err
    assert "rebuilt session_events" in out and "rebuilt session_stats" in out

    assert windows, "no rebuild generation was ever seen under way"
    during = [r for r in reads if windows[0] <= r.started and r.ended <= windows[-1]]
    assert during, f"no read landed during the rebuild ({len(reads)} reads in all)"
    assert all(r.events == EVENTS and r.stats == expected_stats for r in reads)
    assert generations_under_way(observer) == []


def test_a_rebuild_killed_part_way_leaves_the_live_models_and_the_next_run_works(
    server: ServerProcess, client: httpx.Client, observer: Service, tmp_path: Path
) -> None:
    number = recorded_session(client)
    expected_stats = client.get(f"/api/sessions/{number}/stats").json()["data"]
    command = rebuild_command(server, "session_events", "--batch-size", "5")
    deadline = time.monotonic() + 60
    while not generations_under_way(observer):
        assert command.poll() is None, command.communicate()
        assert time.monotonic() < deadline, "the rebuild never started"
        time.sleep(0.005)
    os.kill(command.pid, signal.SIGKILL)  # power loss, as far as the rebuild can tell
    command.wait()

    assert generations_under_way(observer)  # what it built is left behind, beside the live model
    assert len(client.get(f"/api/sessions/{number}/events", params={"limit": 1000}).json()["data"]) == EVENTS
    assert client.get(f"/api/sessions/{number}/stats").json()["data"] == expected_stats
    status = subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "projections", "status"],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "rebuilding" not in status.stdout  # nobody holds the rebuild's lock any more

    rerun = rebuild_command(server, "session_events")
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert generations_under_way(observer) == []
    assert observer.database.tables_named_like("session_events" + GENERATION_MARK) == []
    assert len(client.get(f"/api/sessions/{number}/events", params={"limit": 1000}).json()["data"]) == EVENTS
