"""Live notifications (`GET /api/stream`, `/api/ws`) against real server processes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets

from application.scope import Scope
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres
from tests.factories import wire_event
from tests.http.sse import StreamReader

EVENT = wire_event()


def api(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_one_notification_per_call_sent_once_the_events_are_readable(server: ServerProcess, scope: Scope) -> None:
    token = server.token(scope)
    reader = StreamReader(server.base_url, token)
    try:
        with api(server, token) as client:
            sid = client.post("/api/sessions", json={}).json()["data"]["id"]
            event_id = str(uuid.uuid4())
            client.post(f"/api/sessions/{sid}/events", json=EVENT)
            started = time.monotonic()
            client.post(f"/api/sessions/{sid}/events/batch", json={"events": [{**EVENT, "id": event_id}] + [EVENT] * 4})
            reader.wait_for(lambda ms: sum(m.event == "session_events" for m in ms) == 2)
            assert time.monotonic() - started < 1.5
            client.post(f"/api/sessions/{sid}/events", json={**EVENT, "id": event_id})  # a retry: nothing new
            client.post(
                f"/api/sessions/{sid}/events",
                json={**EVENT, "event_type": "session_status_changed", "data": {"new_status": "complete"}},
            )
            reader.wait_for(lambda ms: any(m.event == "session_updated" for m in ms))
            time.sleep(0.5)
            assert [m.data for m in reader.of("session_events")] == [
                {"session_id": sid, "event_count": 1},
                {"session_id": sid, "event_count": 5},
                {"session_id": sid, "event_count": 1},
            ]
            assert [m.data for m in reader.of("session_updated")] == [
                {"session_id": sid, "status": "complete", "external_conversation_id": None}
            ]
            ids = [m.id for m in reader.messages]
            assert all(ids) and len(set(ids)) == len(ids)
    finally:
        reader.close()


def test_after_a_notification_the_announced_events_can_be_read(server: ServerProcess, scope: Scope) -> None:
    token = server.token(scope)
    reader = StreamReader(server.base_url, token)
    try:
        with api(server, token) as writer, api(server, token) as other_client:
            sid = writer.post("/api/sessions", json={}).json()["data"]["id"]
            for k in range(1, 11):
                writer.post(f"/api/sessions/{sid}/events/batch", json={"events": [EVENT] * k})
            expected = 0
            for k in range(1, 11):
                expected += k
                reader.wait_for(lambda ms, k=k: len([m for m in ms if m.event == "session_events"]) >= k)
            # Each notification's events were readable when it was sent: check the last, by a fresh client.
            events = other_client.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]
            assert len(events) == expected
    finally:
        reader.close()


def test_another_scope_never_sees_the_session(server: ServerProcess, scope: Scope) -> None:
    mine = server.token(scope)
    same_account_other_user = server.token(Scope(scope.account_id, scope.user_id + 1))
    other_account_same_user = server.token(Scope(scope.account_id + 1, scope.user_id))
    watchers = [StreamReader(server.base_url, t) for t in (mine, same_account_other_user, other_account_same_user)]
    try:
        with api(server, mine) as client:
            sid = client.post("/api/sessions", json={}).json()["data"]["id"]
            client.post(f"/api/sessions/{sid}/events", json=EVENT)
        watchers[0].wait_for(lambda ms: len(ms) == 1)
        time.sleep(0.5)
        assert watchers[1].messages == [] and watchers[2].messages == []
    finally:
        for w in watchers:
            w.close()


def test_keep_alives_and_auth(server: ServerProcess, scope: Scope) -> None:
    reader = StreamReader(server.base_url, server.token(scope))
    try:
        time.sleep(2.5)
        assert reader.comments.count("keep-alive") >= 1
    finally:
        reader.close()
    refused = httpx.get(f"{server.base_url}/api/stream", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")


def test_resuming_with_last_event_id_resends_what_was_missed(server: ServerProcess, scope: Scope) -> None:
    token = server.token(scope)
    first = StreamReader(server.base_url, token)
    with api(server, token) as client:
        sid = client.post("/api/sessions", json={}).json()["data"]["id"]
        client.post(f"/api/sessions/{sid}/events", json=EVENT)
        [seen] = first.wait_for(lambda ms: len(ms) == 1)
        first.close()
        for k in (2, 3):
            client.post(f"/api/sessions/{sid}/events/batch", json={"events": [EVENT] * k})
        client.get(f"/api/sessions/{sid}/events")  # read-your-writes: both are readable now
    resumed = StreamReader(server.base_url, token, last_event_id=seen.id)
    try:
        messages = resumed.wait_for(lambda ms: len(ms) >= 2)
        assert [m.data["event_count"] for m in messages] == [2, 3]
        stale = StreamReader(server.base_url, token, last_event_id="0")
        try:
            assert [m.data["event_count"] for m in stale.wait_for(lambda ms: len(ms) >= 3)] == [1, 2, 3]
        finally:
            stale.close()
    finally:
        resumed.close()


def test_websocket_variant_with_token_in_query(server: ServerProcess, scope: Scope) -> None:
    token = server.token(scope)

    async def scenario() -> dict:
        url = server.base_url.replace("http", "ws") + f"/api/ws?token={token}"
        async with websockets.connect(url) as socket:
            with api(server, token) as client:
                sid = client.post("/api/sessions", json={}).json()["data"]["id"]
                client.post(f"/api/sessions/{sid}/events", json=EVENT)
            while True:
                message = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if message["event"] == "session_events":
                    return {"sid": sid, **message}

    received = asyncio.run(scenario())
    assert received["data"] == {"session_id": received["sid"], "event_count": 1}

    async def refused() -> int | None:
        url = server.base_url.replace("http", "ws") + "/api/ws?token=nope"
        async with websockets.connect(url) as socket:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(refused()) == 4401


def test_shutdown_closes_streams_cleanly(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path)
    reader = StreamReader(server.base_url, server.token(Scope(31, 32)))
    took = server.stop()
    assert reader.ended.wait(5)
    assert took < 8, f"shutdown took {took:.1f} s"


def test_two_workers_every_stream_hears_every_write(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path, workers=2)
        try:
            token = server.token(Scope(41, 42))
            readers = [StreamReader(server.base_url, token) for _ in range(6)]
            sid = None
            for _ in range(10):
                with api(server, token) as client:  # a new connection each time: spread over workers
                    if sid is None:
                        sid = client.post("/api/sessions", json={}).json()["data"]["id"]
                    assert client.post(f"/api/sessions/{sid}/events", json=EVENT).status_code == 200
            for reader in readers:
                assert len(reader.wait_for(lambda ms: len(ms) >= 10)) == 10
            for reader in readers:
                reader.close()
        finally:
            server.stop()


def test_listener_connection_killed_notifications_resume_and_none_are_lost(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path)
        try:
            token = server.token(Scope(51, 52))
            reader = StreamReader(server.base_url, token)
            with api(server, token) as client:
                sid = client.post("/api/sessions", json={}).json()["data"]["id"]
                client.post(f"/api/sessions/{sid}/events", json=EVENT)
                reader.wait_for(lambda ms: len(ms) == 1)
                with psycopg.connect(url, autocommit=True) as admin:
                    killed = admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name IN ('session-events listener', 'session-events projection')"
                    ).fetchall()
                assert killed
                for k in range(2, 6):
                    client.post(f"/api/sessions/{sid}/events/batch", json={"events": [EVENT] * k})
                started = time.monotonic()
                messages = reader.wait_for(lambda ms: len(ms) >= 5, timeout=10)
                assert time.monotonic() - started < 5
                assert [m.data["event_count"] for m in messages] == [1, 2, 3, 4, 5]
                # A client that was away during the outage resumes without loss.
                resumed = StreamReader(server.base_url, token, last_event_id=messages[0].id)
                try:
                    assert [m.data["event_count"] for m in resumed.wait_for(lambda ms: len(ms) >= 4)] == [2, 3, 4, 5]
                finally:
                    resumed.close()
            reader.close()
        finally:
            server.stop()


def test_a_resume_id_from_another_log_gets_a_resync_then_live_notifications(
    server: ServerProcess, scope: Scope
) -> None:
    token = server.token(scope)
    reader = StreamReader(server.base_url, token, last_event_id="999999999")
    try:
        [resync] = reader.wait_for(lambda ms: len(ms) == 1)
        assert resync.event == "resync" and resync.id
        with api(server, token) as client:
            sid = client.post("/api/sessions", json={}).json()["data"]["id"]
            client.post(f"/api/sessions/{sid}/events", json=EVENT)
        messages = reader.wait_for(lambda ms: len(ms) == 2)
        assert messages[1].data == {"session_id": sid, "event_count": 1}
    finally:
        reader.close()
    again = StreamReader(server.base_url, token, last_event_id=resync.id)  # resuming from a resync: no new resync
    try:
        assert [m.data["event_count"] for m in again.wait_for(lambda ms: len(ms) >= 1)] == [1]
    finally:
        again.close()


def test_websocket_tokens_never_reach_the_server_log(database_url: str, tmp_path: Path) -> None:
    server = ServerProcess(database_url, tmp_path, log_level="info")  # logs every connection
    try:
        token = server.token(Scope(61, 62))

        async def connect() -> None:
            url = server.base_url.replace("http", "ws") + f"/api/ws?token={token}"
            async with websockets.connect(url):
                pass

        asyncio.run(connect())
        time.sleep(0.3)
        log = server.log.read_text()
        assert "WebSocket /api/ws?token=[redacted]" in log
        assert token not in log
    finally:
        server.stop()
