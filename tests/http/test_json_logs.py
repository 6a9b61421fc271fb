"""`serve --log-format json` on a real server: every line of its output is a JSON object with
the contract's fields, each request has an access line, and neither tokens nor event data are
ever written."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import websockets.sync.client
from websockets.exceptions import ConnectionClosed

from application.scope import Scope
from tests.conftest import ServerProcess
from tests.factories import wire_event

FIELDS = {"time", "level", "logger", "message", "request_id", "route", "status", "duration_ms"}


def test_json_lines_with_request_ids_and_no_secrets(tmp_path: Path) -> None:
    server = ServerProcess(
        f"sqlite:///{tmp_path / 'store.db'}", tmp_path, workers=2, log_level="info", extra_args=["--log-format", "json"]
    )
    marker = f"MARKER-{uuid.uuid4().hex}"
    token = server.token(Scope(51, 52))
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            created = client.post("/api/sessions", json={}, headers={"X-Request-ID": "client-id.42"})
            assert created.headers["x-request-id"] == "client-id.42"
            sid = created.json()["data"]["id"]
            recorded = client.post(f"/api/sessions/{sid}/events", json=wire_event(data={"secret": marker}))
            # Events whose side effects log a note carry the marker too: notes never quote data.
            for noted in (
                wire_event(event_type="error_occurred", data={"message": marker}),
                wire_event(event_type="session_status_changed", data={"new_status": marker}),
                wire_event(event_type="conversation_started", data={"conversation_id": [marker]}),
            ):
                assert client.post(f"/api/sessions/{sid}/events", json=noted).status_code == 200
            assert recorded.status_code == 200
            generated = recorded.headers["x-request-id"]
            refused = client.get(f"/api/sessions/{sid}?q={marker}", headers={"X-Request-ID": "not sane {}"})
            assert refused.headers["x-request-id"] != "not sane {}"
            assert client.get("/api/sessions/999999999").status_code == 404
        base = server.base_url.replace("http://", "ws://")
        refused_url = f"{base}/api/ws?token=WRONG{marker}"
        with pytest.raises(ConnectionClosed), websockets.sync.client.connect(refused_url) as ws:
            ws.recv(timeout=30)
        with websockets.sync.client.connect(f"{base}/api/ws?token={token}") as ws:
            ws.recv(timeout=30)
    finally:
        server.stop()

    text = server.log.read_text()
    assert marker not in text
    assert token not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON
    assert all(set(line) >= FIELDS for line in lines)
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # uvicorn's own loggers too
    access = [line for line in lines if line["logger"] == "session_events.access"]
    by_request = {line["request_id"]: line for line in access}
    assert by_request["client-id.42"]["route"] == "/api/sessions"
    assert by_request["client-id.42"]["status"] == 201
    posted = by_request[generated]
    assert posted["route"] == "/api/sessions/{session_id}/events"
    assert posted["status"] == 200
    assert isinstance(posted["duration_ms"], float)
    assert any(line["route"] == "/api/ws" and line["status"] == 101 for line in access)
    assert not any("999999999" in line["message"] for line in access)  # route templates, not paths


def test_text_logs_stay_as_they_were(tmp_path: Path) -> None:
    server = ServerProcess(f"sqlite:///{tmp_path / 'store.db'}", tmp_path, log_level="info")
    try:
        answer = httpx.get(f"{server.base_url}/health", headers={"X-Request-ID": "abc"}, timeout=30)
        assert answer.headers["x-request-id"] == "abc"
    finally:
        server.stop()
    text = server.log.read_text()
    assert '"GET /health HTTP/1.1" 200' in text  # uvicorn's access line
    assert "session_events.access" not in text
