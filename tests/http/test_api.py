"""The HTTP contract, against a real `session-events serve` process on each store."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from hypothesis import HealthCheck, given, settings

from tests.conftest import ServerProcess
from tests.factories import wire_event
from tests.integration.test_persistence import json_objects, kinds


def new_session(client: httpx.Client, **body: object) -> dict:
    response = client.post("/api/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_health_needs_no_token(server: ServerProcess) -> None:
    assert httpx.get(f"{server.base_url}/health").status_code == 200


def test_missing_unknown_or_malformed_tokens_are_401(server: ServerProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        response = httpx.get(f"{server.base_url}/api/sessions", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert set(response.json()) == {"error", "error_description"}


def test_create_get_and_list_sessions(client: httpx.Client) -> None:
    created = new_session(client, type="coding", agent="claude", environment="vscode", state={"a": 1.0})
    assert created["status"] == "active" and created["event_count"] == 0 and created["id"] > 0
    assert created["external_conversation_id"] is None and created["state"] == {"a": 1.0}
    assert client.get(f"/api/sessions/{created['id']}").json()["data"] == created
    second = new_session(client)
    listed = client.get("/api/sessions").json()["data"]
    assert [s["id"] for s in listed] == [second["id"], created["id"]]
    assert [s["id"] for s in client.get("/api/sessions?limit=1&offset=1").json()["data"]] == [created["id"]]


def test_bad_session_bodies_are_422(client: httpx.Client) -> None:
    response = client.post("/api/sessions", json={"agent": 5, "state": [1]})
    assert response.status_code == 422
    assert response.json() == {"errors": {"agent": ["is invalid"], "state": ["is invalid"]}}


def test_foreign_and_missing_sessions_answer_alike(client: httpx.Client, server: ServerProcess) -> None:
    mine = new_session(client)["id"]
    from application.scope import Scope

    stranger = {"Authorization": f"Bearer {server.token(Scope(999_999_999, 1))}"}
    not_found = {"status": "not_found", "error": "Session not found"}
    for path, method, body in (
        (f"/api/sessions/{mine}", "GET", None),
        (f"/api/sessions/{mine}/events", "GET", None),
        (f"/api/sessions/{mine}/events", "POST", wire_event()),
        (f"/api/sessions/{mine}/events/batch", "POST", {"events": [wire_event()]}),
    ):
        foreign = httpx.request(method, server.base_url + path, headers=stranger, json=body)
        missing = client.request(method, path.replace(str(mine), "987654321"), json=body)
        assert (foreign.status_code, foreign.json()) == (404, not_found) == (missing.status_code, missing.json())


def test_recording_events_and_side_effects(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    started = client.post(
        f"/api/sessions/{sid}/events",
        json=wire_event(event_type="conversationStarted", data={"conversation_id": "conv-1"}),
    )
    assert started.status_code == 200
    assert started.json()["data"]["external_conversation_id"] == "conv-1"
    assert started.json()["data"]["event_count"] == 1
    batch = client.post(
        f"/api/sessions/{sid}/events/batch",
        json={
            "events": [
                wire_event(event_type="conversation_started", data={"conversation_id": "conv-2"}),
                wire_event(event_type="session_status_changed", data={"new_status": "bogus"}),
                wire_event(
                    event_type="session_status_changed",
                    timestamp="2026-01-01T00:00:01",
                    data={"new_status": "complete"},
                    session_id=sid,
                ),
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    body = batch.json()
    assert body["event_count"] == 3
    assert (body["data"]["status"], body["data"]["external_conversation_id"], body["data"]["event_count"]) == (
        "complete",
        "conv-1",
        4,
    )


def test_an_invalid_batch_is_422_with_the_index_and_stores_nothing(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    response = client.post(
        f"/api/sessions/{sid}/events/batch",
        json={
            "events": [
                wire_event(),
                wire_event(event_type="nope", sent_at=None, data=[], id="x"),
                wire_event(data=None),
            ]
        },
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["index"], body["errors"]) == (
        1,
        {
            "event_type": ["is invalid"],
            "sent_at": ["can't be blank"],
            "data": ["is invalid"],
            "id": ["is invalid"],
        },
    )
    assert set(body) == {"index", "errors", "hints"}  # `hints` lists the event types
    assert client.get(f"/api/sessions/{sid}/events").json()["data"] == []
    assert client.get(f"/api/sessions/{sid}").json()["data"]["event_count"] == 0


def test_batch_size_and_shape_are_checked(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    for body, field in (
        ({"events": []}, "events"),
        ({}, "events"),
        ({"events": {}}, "events"),
        ({"events": [wire_event()] * 1001}, "events"),
    ):
        response = client.post(f"/api/sessions/{sid}/events/batch", json=body)
        assert response.status_code == 422 and field in response.json()["errors"], response.text
    response = client.post(f"/api/sessions/{sid}/events/batch", json={"events": [wire_event(), 5]})
    assert response.status_code == 422 and response.json()["index"] == 1


def test_malformed_bodies_are_4xx_with_json(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    for content in (b"{", b"[1,2]", b'"text"', b"\xff\xfe"):
        response = client.post(f"/api/sessions/{sid}/events", content=content)
        assert response.status_code in (400, 422) and response.json()
    single = client.post(f"/api/sessions/{sid}/events", json=wire_event(session_id=sid + 1))
    assert single.status_code == 422 and single.json() == {"errors": {"session_id": ["is invalid"]}}


def test_a_body_over_10_mib_is_413(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    huge = json.dumps(wire_event(data={"blob": "x" * (10 * 1024 * 1024 + 10)})).encode()
    assert client.post(f"/api/sessions/{sid}/events", content=huge).status_code == 413


def test_safe_retries_by_client_id(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    first = client.post(f"/api/sessions/{sid}/events/batch", json={"events": [wire_event(id=i) for i in ids]})
    retry = client.post(
        f"/api/sessions/{sid}/events/batch", json={"events": [wire_event(id=i) for i in [*ids, ids[0]]]}
    )
    single = client.post(f"/api/sessions/{sid}/events", json=wire_event(id=ids[1]))
    assert (first.json()["event_count"], retry.json()["event_count"]) == (3, 0)
    assert single.status_code == 200 and single.json()["data"]["event_count"] == 3
    assert sorted(e["id"] for e in client.get(f"/api/sessions/{sid}/events").json()["data"]) == sorted(ids)


def test_events_read_back_exactly_and_in_order(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    data_text = '{"f": 1.0, "i": 1, "big": 123456789012345678901234567890, "e": 1e400, "s": "\\u00e9", "n": null}'
    raw = (
        '{"event_type": "file_modified", "sent_at": "2026-03-01T10:00:00+01:00", '
        f'"data": {data_text}, "metadata": {{"client": "vscode"}}}}'
    )
    assert client.post(f"/api/sessions/{sid}/events", content=raw.encode()).status_code == 200
    client.post(
        f"/api/sessions/{sid}/events/batch",
        json={
            "events": [
                wire_event(sent_at="2026-03-01T08:00:00Z"),
                wire_event(sent_at="2026-03-01T09:00:00Z"),
                wire_event(sent_at="2026-03-01T09:00:00Z"),
            ]
        },
    )
    response = client.get(f"/api/sessions/{sid}/events")
    assert response.status_code == 200
    assert data_text in response.text  # the client's JSON text, unchanged
    events = response.json()["data"]
    assert [e["sequence"] for e in events] == [2, 1, 3, 4]
    first = events[1]
    assert set(first) >= {"id", "session_id", "event_type", "sent_at", "received_at", "data", "metadata", "sequence"}
    assert (first["session_id"], first["event_type"], first["sent_at"], first["metadata"]) == (
        sid,
        "file_modified",
        "2026-03-01T09:00:00.000000Z",
        {"client": "vscode"},
    )
    assert isinstance(first["data"]["f"], float) and isinstance(first["data"]["i"], int)
    desc = client.get(f"/api/sessions/{sid}/events?order=desc").json()["data"]
    assert [e["sequence"] for e in desc] == [4, 3, 1, 2]
    paged = [
        e["sequence"]
        for off in range(4)
        for e in client.get(f"/api/sessions/{sid}/events?limit=1&offset={off}").json()["data"]
    ]
    assert paged == [2, 1, 3, 4]
    typed = client.get(f"/api/sessions/{sid}/events?event_type=fileModified").json()["data"]
    assert [e["sequence"] for e in typed] == [1]


def test_bad_query_parameters_are_422_naming_the_parameter(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    for query, name in (
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("order=sideways", "order"),
        ("event_type=nope", "event_type"),
        ("offset=99999999999999999999999", "offset"),
    ):
        response = client.get(f"/api/sessions/{sid}/events?{query}")
        assert response.status_code == 422, (query, response.status_code, response.text)
        assert name in response.json()["errors"], (query, response.text)
    assert client.get("/api/sessions?limit=0").status_code == 422


def test_read_your_writes_under_concurrent_writers(client: httpx.Client) -> None:
    sid = new_session(client)["id"]

    def write(k: int) -> int:
        answer = client.post(f"/api/sessions/{sid}/events/batch", json={"events": [wire_event(data={"k": k})] * 5})
        assert answer.status_code == 200, answer.text
        seen = client.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]
        return sum(e["data"] == {"k": k} for e in seen)

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(write, range(12))) == [5] * 12
    session = client.get(f"/api/sessions/{sid}").json()["data"]
    assert session["event_count"] == 60


def test_openapi_docs_are_served(server: ServerProcess) -> None:
    schema = httpx.get(f"{server.base_url}/docs/openapi.json").json()
    assert "/api/sessions/{session_id}/events/batch" in schema["paths"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_objects)
def test_any_json_object_comes_back_over_http_exactly_as_sent(client: httpx.Client, data: dict) -> None:
    sid = new_session(client)["id"]
    text = json.dumps(data, ensure_ascii=False)
    body = f'{{"event_type": "tool_called", "sent_at": "2026-01-01T00:00:00Z", "data": {text}}}'.encode()
    assert client.post(f"/api/sessions/{sid}/events", content=body).status_code == 200
    response = client.get(f"/api/sessions/{sid}/events")
    assert f'"data":{text}' in response.text
    assert kinds(response.json()["data"][0]["data"]) == kinds(data)


def test_hostile_bodies_are_4xx_never_5xx(client: httpx.Client) -> None:
    sid = new_session(client)["id"]
    wrapper = b'"event_type": "tool_called", "sent_at": "2026-01-01T00:00:00Z"'
    cases = {
        b'{"data": {"a": "\xff"}, ' + wrapper + b"}": 400,  # not UTF-8
        b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b", " + wrapper + b"}": 400,  # nested too deeply
        b'{"event_type": ' + b"9" * 5000 + b', "sent_at": "2026-01-01T00:00:00Z", "data": {}}': 422,
        b'{"id": "urn:uuid:12345678-1234-1234-1234-123456789abc", "data": {}, ' + wrapper + b"}": 422,
        b'{"session_id": 1.0, "data": {}, ' + wrapper + b"}": 422,
    }
    for body, expected in cases.items():
        response = client.post(f"/api/sessions/{sid}/events", content=body)
        assert response.status_code == expected, (body[:60], response.status_code, response.text[:200])
        assert response.json()
    assert client.post("/api/sessions", json={"agent": "x" * 1001}).status_code == 422
    assert client.get(f"/api/sessions/{sid}").json()["data"]["event_count"] == 0


def test_non_integer_session_ids_answer_like_missing_sessions(client: httpx.Client) -> None:
    for path in ("/api/sessions/abc", "/api/sessions/1.5/events"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"status": "not_found", "error": "Session not found"})


def test_a_request_without_credentials_gets_a_plain_bearer_challenge(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/api/sessions")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_a_missing_session_is_404_whatever_the_body(client: httpx.Client) -> None:
    for path, body in (
        ("/api/sessions/987654321/events", b"{"),
        ("/api/sessions/987654321/events/batch", b'{"events": 5}'),
    ):
        response = client.post(path, content=body)
        assert (response.status_code, response.json()) == (404, {"status": "not_found", "error": "Session not found"})


def test_sessions_are_listed_by_conversation(client: httpx.Client) -> None:
    linked = new_session(client)["id"]
    new_session(client)
    conversation = f"conv-{uuid.uuid4()}"
    started = wire_event(event_type="conversation_started", data={"conversation_id": conversation})
    assert client.post(f"/api/sessions/{linked}/events", json=started).status_code == 200
    found = client.get("/api/sessions", params={"conversation_id": conversation})
    assert found.status_code == 200
    assert [s["id"] for s in found.json()["data"]] == [linked]
    assert client.get("/api/sessions", params={"conversation_id": "conv-nobody"}).json()["data"] == []
    assert client.get("/api/sessions", params={"conversation_id": "x" * 1001}).status_code == 422
