"""`GET /api/sessions/{id}/stats` against a real `session-events serve` process, on each store:
the exact shape of the contract ("Analysts"), read-your-writes, and 404s like every session
endpoint."""

from __future__ import annotations

import httpx

from application.scope import Scope
from tests.conftest import ServerProcess
from tests.factories import wire_event

NOT_FOUND = {"status": "not_found", "error": "Session not found"}


def new_session(client: httpx.Client) -> int:
    response = client.post("/api/sessions", json={})
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


def stats(client: httpx.Client, sid: int) -> dict:
    response = client.get(f"/api/sessions/{sid}/stats")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_a_session_without_events_answers_zeros_and_nulls(client: httpx.Client) -> None:
    sid = new_session(client)
    assert stats(client, sid) == {
        "data": {
            "session_id": sid,
            "event_count": 0,
            "first_sent_at": None,
            "last_sent_at": None,
            "by_type": {},
            "errors": 0,
            "tools": {},
        }
    }


def test_the_stats_have_exactly_the_contracts_shape_and_times_like_the_events(client: httpx.Client) -> None:
    sid = new_session(client)
    events = [
        wire_event(
            event_type="tool_called",
            sent_at="2026-01-01T00:00:01.000125Z",
            data={"tool_name": "Read", "tool_use_id": "a"},
        ),
        wire_event(
            event_type="toolResult", sent_at="2026-01-01T00:00:01.003375Z", data={"tool_use_id": "a", "success": False}
        ),
        wire_event(
            event_type="tool_called",
            sent_at="2026-01-01T02:00:00+02:00",
            data={"tool_name": "Bash", "tool_use_id": "b"},
        ),
        wire_event(event_type="error_occurred", timestamp="2026-01-01T00:00:07.5", sent_at=..., data={"message": "x"}),
        wire_event(event_type="file_modified", sent_at="2026-01-01T00:00:03Z", data={"tool_name": "Edit"}),
    ]
    response = client.post(f"/api/sessions/{sid}/events/batch", json={"events": events})
    assert response.status_code == 200, response.text

    assert stats(client, sid) == {
        "data": {
            "session_id": sid,
            "event_count": 5,
            "first_sent_at": "2026-01-01T00:00:00.000000Z",  # the Bash call, sent at +02:00
            "last_sent_at": "2026-01-01T00:00:07.500000Z",  # no offset means UTC
            "by_type": {"error_occurred": 1, "file_modified": 1, "tool_called": 2, "tool_result": 1},
            "errors": 1,
            "tools": {
                "Bash": {"calls": 1, "completed": 0, "failures": 0, "total_duration_ms": 0.0},
                "Read": {"calls": 1, "completed": 1, "failures": 1, "total_duration_ms": 3.25},
            },
        }
    }
    listed = client.get(f"/api/sessions/{sid}/events").json()["data"]
    body = stats(client, sid)["data"]
    assert (body["first_sent_at"], body["last_sent_at"]) == (listed[0]["sent_at"], listed[-1]["sent_at"])


def test_stats_read_their_writes(client: httpx.Client) -> None:
    """Each answer counts the event whose POST answered just before it, with no waiting here."""
    sid = new_session(client)
    for k in range(1, 6):
        posted = client.post(
            f"/api/sessions/{sid}/events",
            json=wire_event(event_type="tool_called", data={"tool_name": "Grep", "tool_use_id": f"g{k}"}),
        )
        assert posted.status_code == 200, posted.text
        body = stats(client, sid)["data"]
        assert (body["event_count"], body["tools"]["Grep"]["calls"]) == (2 * k - 1, k)
        answered = client.post(
            f"/api/sessions/{sid}/events/batch",
            json={
                "events": [
                    wire_event(
                        event_type="tool_result", sent_at="2026-01-01T00:00:00.002Z", data={"tool_use_id": f"g{k}"}
                    )
                ]
            },
        )
        assert answered.status_code == 200, answered.text
        assert stats(client, sid)["data"]["tools"]["Grep"] == {
            "calls": k,
            "completed": k,
            "failures": 0,
            "total_duration_ms": 2.0 * k,
        }


def test_a_missing_or_foreign_session_is_404_like_every_session_endpoint(
    client: httpx.Client, server: ServerProcess
) -> None:
    mine = new_session(client)
    stranger = {"Authorization": f"Bearer {server.token(Scope(999_999_998, 1))}"}
    foreign = httpx.get(f"{server.base_url}/api/sessions/{mine}/stats", headers=stranger)
    missing = client.get("/api/sessions/987654321/stats")
    not_a_number = client.get("/api/sessions/abc/stats")
    for response in (foreign, missing, not_a_number):
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    no_token = httpx.get(f"{server.base_url}/api/sessions/{mine}/stats")
    assert no_token.status_code == 401


def test_an_event_whose_data_is_not_an_object_is_refused_and_counts_nowhere(client: httpx.Client) -> None:
    sid = new_session(client)
    for data in ([{"tool_name": "Read"}], "tool_name", 5):
        response = client.post(f"/api/sessions/{sid}/events", json=wire_event(data=data))
        assert response.status_code == 422 and response.json()["errors"] == {"data": ["is invalid"]}
    assert stats(client, sid)["data"]["event_count"] == 0
