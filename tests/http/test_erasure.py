"""`DELETE /api/sessions/{id}` against real server processes, on both stores: the erased
session's marker is nowhere in the database itself (a `pg_dump`, the SQLite files), it answers
404 everywhere and in every worker, and everything else keeps working: other sessions, rebuilds,
exports, notifications and metrics (ADR 0013)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

from application.scope import Scope
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres
from tests.factories import wire_event
from tests.http.sse import StreamReader
from tests.raw_database import database_bytes, holds

TOOL_CALLS = 20


def start_marked_session(client: httpx.Client, marker: str) -> int:
    """A session whose every kind of stored text holds `marker`: data, metadata, its conversation
    id, tools' names (session_stats keeps them), an error's message; its tool calls stay open."""
    sid = int(client.post("/api/sessions", json={"agent": "agent"}).json()["data"]["id"])
    calls = [wire_event(data={"tool_name": f"tool-{marker}", "tool_use_id": f"use-{k}"}) for k in range(TOOL_CALLS)]
    events = [
        wire_event(event_type="conversation_started", data={"conversation_id": f"conv-{marker}"}),
        wire_event(data={"note": marker}, metadata={"m": marker}),
        wire_event(event_type="error_occurred", data={"message": f"failed: {marker}"}),
        *calls,
    ]
    assert client.post(f"/api/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    assert f"tool-{marker}" in client.get(f"/api/sessions/{sid}/stats").json()["data"]["tools"]  # projected
    return sid


def complete_tool_calls(client: httpx.Client, sid: int) -> None:
    """Their rows leave `session_stats_open_calls`; the bytes of deleted rows linger in the free
    space of pages, even of pages that kept other sessions' rows (SQLite: only rewriting the file
    removes them, see tests/integration/test_erasure.py)."""
    results = [wire_event(event_type="tool_result", data={"tool_use_id": f"use-{k}"}) for k in range(TOOL_CALLS)]
    assert client.post(f"/api/sessions/{sid}/events/batch", json={"events": results}).status_code == 200
    tools = client.get(f"/api/sessions/{sid}/stats").json()["data"]["tools"]
    assert [tool["completed"] for tool in tools.values()] == [TOOL_CALLS]


def marked_sessions(client: httpx.Client, gone: str, kept: str) -> tuple[int, int]:
    """The session to erase, and another of the same scope whose open calls are its neighbours."""
    erased, other = start_marked_session(client, gone), start_marked_session(client, kept)
    complete_tool_calls(client, erased)
    return erased, other


def test_an_erased_session_leaves_no_trace_of_its_data_in_the_database(
    client: httpx.Client, server: ServerProcess
) -> None:
    url = server.env["DATABASE_URL"]
    gone, kept = f"GONE{uuid.uuid4().hex}", f"KEPT{uuid.uuid4().hex}"
    erased, other = marked_sessions(client, gone, kept)
    assert holds(database_bytes(url), gone)  # the check can see what it looks for

    answer = client.delete(f"/api/sessions/{erased}")

    assert (answer.status_code, answer.content) == (204, b"")
    raw = database_bytes(url)
    assert not holds(raw, gone)
    assert holds(raw, kept)
    for path in (f"/api/sessions/{erased}", f"/api/sessions/{erased}?sequence=1", f"/api/sessions/{erased}/events",
                 f"/api/sessions/{erased}/stats"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/api/sessions/{erased}/events", json=wire_event()).status_code == 404
    assert client.get("/api/sessions", params={"conversation_id": f"conv-{gone}"}).json()["data"] == []
    assert [s["id"] for s in client.get("/api/sessions").json()["data"]] == [other]
    assert client.delete(f"/api/sessions/{erased}").status_code == 404  # once only
    assert len(client.get(f"/api/sessions/{other}/events?limit=1000").json()["data"]) == 3 + TOOL_CALLS


def test_after_an_erasure_rebuilds_exports_notifications_and_metrics_keep_working(
    client: httpx.Client, server: ServerProcess, scope: Scope
) -> None:
    url, token = server.env["DATABASE_URL"], str(client.headers["Authorization"]).split()[-1]
    gone, kept = f"GONE{uuid.uuid4().hex}", f"KEPT{uuid.uuid4().hex}"
    live = StreamReader(server.base_url, token)
    try:
        erased, other = marked_sessions(client, gone, kept)
        stats_before = client.get(f"/api/sessions/{other}/stats").json()
        assert client.delete(f"/api/sessions/{erased}").status_code == 204
        live.wait_for(lambda messages: any(m.event == "session_erased" for m in messages))
    finally:
        live.close()
    assert [m.data for m in live.of("session_erased")] == [{"session_id": erased}]

    replay = StreamReader(server.base_url, token, last_event_id="0")  # everything, from the start
    try:
        replay.wait_for(lambda messages: any(m.event == "session_erased" for m in messages))
    finally:
        replay.close()
    replayed = [(m.event, m.data["session_id"]) for m in replay.messages]
    assert ("session_events", other) in replayed and ("session_erased", erased) in replayed
    assert ("session_events", erased) not in replayed and ("session_updated", erased) not in replayed

    rebuilt = command(server, "projections", "rebuild", "--quiet")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not holds(database_bytes(url), gone)
    assert client.get(f"/api/sessions/{erased}/events").status_code == 404
    assert client.get(f"/api/sessions/{other}/stats").json() == stats_before

    exported = command(server, "export")
    lines = [json.loads(line) for line in exported.stdout.split("\n") if line]  # not splitlines: data may hold U+2028
    assert {e["session_id"] for e in lines} >= {other} and erased not in {e["session_id"] for e in lines}
    assert gone not in exported.stdout
    assert command(server, "export", "--session", str(erased)).returncode == 2

    metrics = httpx.get(f"{server.base_url}/metrics").text
    erasures = [line for line in metrics.splitlines() if line.startswith("session_events_sessions_erased_total ")]
    assert erasures and float(erasures[0].split()[-1]) >= 1
    assert 'session_events_projection_state{projection="session_stats",state="live"} 1.0' in metrics


def command(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        check=False,
    )


def on_fresh_connections(server: ServerProcess, token: str, method: str, path: str, times: int = 20) -> list[int]:
    """One request per new connection, so that they spread over the worker processes."""
    statuses = []
    headers = {"Authorization": f"Bearer {token}"}
    body = wire_event() if method == "POST" else None
    for _ in range(times):
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
            statuses.append(http.request(method, path, json=body).status_code)
    return statuses


def test_two_workers_on_postgres_forget_an_erased_session_they_had_cached(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path, workers=2)
        try:
            token = server.token(Scope(81, 82))
            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
                sid = client.post("/api/sessions", json={}).json()["data"]["id"]
            appended = on_fresh_connections(server, token, "POST", f"/api/sessions/{sid}/events")
            assert appended == [200] * 20  # both workers loaded it, and keep it cached
            assert on_fresh_connections(server, token, "GET", f"/api/sessions/{sid}") == [200] * 20

            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
                assert client.delete(f"/api/sessions/{sid}").status_code == 204

            assert on_fresh_connections(server, token, "GET", f"/api/sessions/{sid}") == [404] * 20
            assert on_fresh_connections(server, token, "POST", f"/api/sessions/{sid}/events") == [404] * 20
            exported = command(server, "export")
            assert exported.returncode == 0 and exported.stdout == ""
        finally:
            server.stop()
