"""`GET /api/sessions/{id}?sequence=N` against a real `session-events serve` process, on each store:
the session exactly as the answer to its N-th event's POST showed it."""

from __future__ import annotations

import httpx
import pytest

from application.scope import Scope
from tests.conftest import ServerProcess
from tests.factories import wire_event

NOT_FOUND = {"status": "not_found", "error": "Session not found"}


def new_session(client: httpx.Client) -> dict:
    response = client.post("/api/sessions", json={"agent": "claude-code", "state": {"k": 1.0}})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_each_sequence_answers_the_session_as_its_event_left_it(client: httpx.Client) -> None:
    created = new_session(client)
    path = f"/api/sessions/{created['id']}"
    answers = [created]
    for event in (
        wire_event(event_type="conversation_started", data={"conversation_id": "conv-a"}),
        wire_event(),
        wire_event(event_type="sessionStatusChanged", data={"new_status": "complete"}),
        wire_event(event_type="session_status_changed", data={"new_status": "failed"}),
    ):
        response = client.post(f"{path}/events", json=event)
        assert response.status_code == 200, response.text
        answers.append(response.json()["data"])
    for n, answered in enumerate(answers):
        response = client.get(path, params={"sequence": n})
        assert response.status_code == 200, response.text
        assert response.json()["data"] == answered, n  # updated_at included: the time of the N-th event
        assert response.json()["data"]["event_count"] == n
    assert [a["status"] for a in answers] == ["active", "active", "active", "complete", "failed"]
    assert client.get(path).json()["data"] == answers[-1]  # without `sequence`: as it is now


def test_a_batch_is_seen_event_by_event(client: httpx.Client) -> None:
    session_id = new_session(client)["id"]
    batch = [
        wire_event(),
        wire_event(event_type="session_status_changed", data={"new_status": "cancelled"}),
        wire_event(),
    ]
    assert client.post(f"/api/sessions/{session_id}/events/batch", json={"events": batch}).status_code == 200
    statuses = [
        client.get(f"/api/sessions/{session_id}", params={"sequence": n}).json()["data"]["status"] for n in range(4)
    ]
    assert statuses == ["active", "active", "cancelled", "cancelled"]


@pytest.mark.parametrize("sequence", ["3", "-1", "100000000000000000000000"])
def test_a_sequence_outside_the_session_is_422_naming_the_parameter(client: httpx.Client, sequence: str) -> None:
    session_id = new_session(client)["id"]
    client.post(f"/api/sessions/{session_id}/events/batch", json={"events": [wire_event(), wire_event()]})
    response = client.get(f"/api/sessions/{session_id}?sequence={sequence}")
    assert response.status_code == 422
    assert response.json() == {"errors": {"sequence": ["must be between 0 and 2, the session's event count"]}}


@pytest.mark.parametrize("sequence", ["two", "1.5"])
def test_a_sequence_that_is_not_a_whole_number_is_422(client: httpx.Client, sequence: str) -> None:
    session_id = new_session(client)["id"]
    response = client.get(f"/api/sessions/{session_id}?sequence={sequence}")
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["sequence"]


@pytest.mark.parametrize("sequence", ["0", "-1", "99"])
def test_a_foreign_or_missing_session_is_404_whatever_the_sequence(
    client: httpx.Client, server: ServerProcess, sequence: str
) -> None:
    mine = new_session(client)["id"]
    stranger = {"Authorization": f"Bearer {server.token(Scope(999_999_998, 1))}"}
    foreign = httpx.get(f"{server.base_url}/api/sessions/{mine}?sequence={sequence}", headers=stranger)
    assert (foreign.status_code, foreign.json()) == (404, NOT_FOUND)
    missing = client.get(f"/api/sessions/{mine + 1_000_000}?sequence={sequence}")
    assert (missing.status_code, missing.json()) == (404, NOT_FOUND)
