"""What docs/security.md promises about the HTTP surface, against a real server: every session
route answers a foreign scope exactly like a missing session (the routes are enumerated from the
app, so a route added later is covered), security headers on every kind of answer, CORS off."""

from __future__ import annotations

import uuid

import httpx
import pytest

from application.scope import Scope
from entrypoints.http.app import create_app
from tests.conftest import ServerProcess
from tests.factories import wire_event

NOT_FOUND = {"status": "not_found", "error": "Session not found"}
BODIES = {"/events": wire_event(), "/events/batch": {"events": [wire_event()]}}


def session_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route that names a session, read from the app itself."""
    found = []
    for route in create_app().routes:
        if "{session_id:int}" not in route.path:
            continue
        for method in sorted(getattr(route, "methods", set()) - {"OPTIONS", "HEAD"}):
            found.append((method, route.path.replace("{session_id:int}", "{}")))
    return found


def test_the_app_has_the_session_routes_this_test_expects() -> None:
    routes = session_routes()
    assert len(routes) >= 6  # GET and DELETE session, GET/POST events, POST batch, GET stats
    assert ("DELETE", "/api/sessions/{}") in routes


@pytest.mark.parametrize("query", ["", "?sequence=0", "?limit=5&order=desc"])
def test_every_session_route_answers_a_foreign_scope_like_a_missing_session(
    client: httpx.Client, server: ServerProcess, query: str
) -> None:
    mine = client.post("/api/sessions", json={}).json()["data"]["id"]
    assert client.post(f"/api/sessions/{mine}/events", json=wire_event()).status_code == 200
    stranger = {"Authorization": f"Bearer {server.token(Scope(999_999_001, 7))}"}
    for method, template in session_routes():
        path = "/api" + template.format(mine) if not template.startswith("/api") else template.format(mine)
        missing_path = path.replace(f"/{mine}", "/987654321", 1)
        body = next((b for suffix, b in BODIES.items() if path.endswith(suffix)), None)
        as_stranger = httpx.request(method, server.base_url + path + query, headers=stranger, json=body)
        as_missing = client.request(method, missing_path + query, json=body)
        assert (as_stranger.status_code, as_stranger.json()) == (404, NOT_FOUND), (method, path)
        assert (as_missing.status_code, as_missing.json()) == (404, NOT_FOUND), (method, path)
    # And nothing the stranger sent was stored, nor erased.
    assert len(client.get(f"/api/sessions/{mine}/events").json()["data"]) == 1


def test_a_stranger_cannot_find_a_session_by_its_conversation(client: httpx.Client, server: ServerProcess) -> None:
    conversation = f"conv-{uuid.uuid4()}"
    mine = client.post("/api/sessions", json={}).json()["data"]["id"]
    started = wire_event(event_type="conversation_started", data={"conversation_id": conversation})
    client.post(f"/api/sessions/{mine}/events", json=started)
    stranger = {"Authorization": f"Bearer {server.token(Scope(999_999_002, 7))}"}
    found = httpx.get(f"{server.base_url}/api/sessions", params={"conversation_id": conversation}, headers=stranger)
    assert found.json()["data"] == []
    assert [s["id"] for s in httpx.get(f"{server.base_url}/api/sessions", headers=stranger).json()["data"]] == []


@pytest.mark.parametrize(
    ("method", "path", "authorised"),
    [
        ("GET", "/health", False),
        ("GET", "/api/sessions", True),
        ("GET", "/api/sessions", False),  # 401
        ("GET", "/api/sessions/987654321", True),  # 404
        ("GET", "/api/sessions?limit=0", True),  # 422
        ("GET", "/docs", False),
        ("GET", "/docs/openapi.json", False),
        ("GET", "/no/such/path", False),
    ],
)
def test_security_headers_on_every_kind_of_answer(
    client: httpx.Client, server: ServerProcess, method: str, path: str, authorised: bool
) -> None:
    answer = client.request(method, path) if authorised else httpx.request(method, server.base_url + path)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    if not path.startswith("/docs"):
        assert answer.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in answer.headers["content-security-policy"]


def test_cors_is_off(client: httpx.Client, server: ServerProcess) -> None:
    origin = {"Origin": "https://elsewhere.example"}
    preflight = httpx.options(
        f"{server.base_url}/api/sessions",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    answered = client.get("/api/sessions", headers=origin)
    for answer in (preflight, answered):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("hostile", ["' OR '1'='1", "x'; DROP TABLE session_events; --", "%s", "?", "\\", "\u0000"])
def test_input_never_becomes_sql(client: httpx.Client, hostile: str) -> None:
    """Every value reaches the database as a bound parameter: SQL in a parameter is just text."""
    mine = client.post("/api/sessions", json={}).json()["data"]["id"]
    assert client.post(f"/api/sessions/{mine}/events", json=wire_event(data={"q": hostile})).status_code == 200
    by_conversation = client.get("/api/sessions", params={"conversation_id": hostile})
    if "\x00" in hostile:  # no stored id can hold a NUL: the parameter is invalid
        assert (by_conversation.status_code, by_conversation.json()) == (
            422,
            {"errors": {"conversation_id": ["is invalid"]}},
        )
    else:
        assert by_conversation.json()["data"] == []
    started = wire_event(event_type="conversation_started", data={"conversation_id": hostile})
    linked = client.post(f"/api/sessions/{mine}/events", json=started)
    assert linked.status_code == 200  # stored; a NUL id is not linked
    expected = None if "\x00" in hostile else hostile
    assert linked.json()["data"]["external_conversation_id"] == expected
    assert client.get(f"/api/sessions/{mine}/events", params={"event_type": hostile}).status_code == 422
    assert client.get(f"/api/sessions/{mine}/events", params={"order": hostile}).status_code == 422
    events = client.get(f"/api/sessions/{mine}/events", params={"event_type": "tool_called"}).json()["data"]
    assert [e["data"] for e in events] == [{"q": hostile}]
