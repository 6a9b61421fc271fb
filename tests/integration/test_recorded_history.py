"""A history that never shifts, through the real stores: a session loads to the same state from
its history, a snapshot or a cache whatever the side-effect rules become, and a database as 0.1.0
left it (its events stored without outcome, its snapshot) reads back to the state 0.1.0 gave it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest

from adapters.database.url import DatabaseSettings
from adapters.eventstore.log import SNAPSHOT_INTERVAL, SessionLog, open_session_log
from application.queries import EventQuery, Page
from application.scope import Scope
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import STORES, ServerProcess, settings_for, store_url
from tests.factories import raw_event
from tests.release_0_1_0 import (
    ACCOUNT_ID,
    NUMBERS,
    SNAPSHOTTED,
    USER_ID,
    State,
    rows_0_1_0_wrote,
    session_uuid,
    states_0_1_0_loaded,
    write_as_0_1_0_left_it,
)
from tests.rules import use_other_rules

OLD_SCOPE = Scope(ACCOUNT_ID, USER_ID)


def state(session: Session) -> State:
    return State(session.status, session.external_conversation_id, session.event_count, session.version)


def from_history(log: SessionLog, session_id: UUID) -> Session:
    """Replayed from its first event, ignoring snapshots and caches."""
    aggregate: Any = None
    for domain_event in log.events.get(session_id):
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, Session)
    return aggregate


class ColdLoad:
    """A log of its own (an empty cache, as in another process); records which events a load
    reads after a snapshot, to show that the snapshot was used."""

    def __init__(self, url: str) -> None:
        self.log = open_session_log(DatabaseSettings.from_url(url))
        self.read_after: list[int | None] = []
        events_get = self.log.events.get

        def spy(*args: Any, **kwargs: Any) -> Any:
            self.read_after.append(kwargs.get("gt"))
            return events_get(*args, **kwargs)

        self.log.events.get = spy  # type: ignore[method-assign]

    def session(self, session_id: UUID) -> Session:
        session = self.log.repository.get(session_id)
        assert isinstance(session, Session)
        return session

    def __enter__(self) -> ColdLoad:
        return self

    def __exit__(self, *_: object) -> None:
        self.log.close()


def test_history_never_shifts_whichever_way_a_session_is_loaded(
    service: Service, database_url: str, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = service.sessions
    number = sessions.create_session(scope).number
    sessions.handle_events(
        scope,
        number,
        [
            raw_event(event_type="session_status_changed", data={"new_status": "failed"}),
            raw_event(event_type="conversation_started", data={"conversation_id": "c-9"}),
            *[raw_event() for _ in range(SNAPSHOT_INTERVAL)],
        ],
    )
    sessions.handle_event(scope, number, raw_event(event_type="session_paused"))
    expected = State("failed", "c-9", SNAPSHOT_INTERVAL + 3, SNAPSHOT_INTERVAL + 4)
    assert state(sessions.get_session(scope, number)) == expected

    use_other_rules(monkeypatch)
    session_id = Session.create_id(number)
    assert state(sessions.get_session(scope, number)) == expected  # this process's cached copy
    with ColdLoad(database_url) as cold:
        assert state(cold.session(session_id)) == expected
        assert cold.read_after == [SNAPSHOT_INTERVAL + 3], "not loaded from the snapshot"
        assert state(from_history(cold.log, session_id)) == expected

    # A rule changed now applies to the events recorded from now on, however they are loaded.
    sessions.handle_events(
        scope,
        number,
        [
            raw_event(event_type="session_status_changed", data={"new_status": "complete"}),
            raw_event(event_type="conversation_started", data={"conversation_id": "c-10"}),
        ],
    )
    now = State("cancelled", "other", SNAPSHOT_INTERVAL + 5, SNAPSHOT_INTERVAL + 6)
    assert state(sessions.get_session(scope, number)) == now
    with ColdLoad(database_url) as cold:
        assert state(cold.session(session_id)) == now
        assert state(from_history(cold.log, session_id)) == now


def test_new_events_are_stored_with_their_outcome_and_version(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(
        scope,
        number,
        [
            raw_event(event_type="session_status_changed", data={"new_status": "complete"}),
            raw_event(event_type="tool_called"),
        ],
    )
    stored = service.log.recorder.select_events(Session.create_id(number), gt=1)
    assert [json.loads(row.state)["changes"] for row in stored] == [{"status": "complete"}, {}]
    assert {json.loads(row.state)["class_version"] for row in stored} == {2}


# A database as 0.1.0 left it.


@pytest.fixture(params=STORES)
def url_0_1_0(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path) as url:
        write_as_0_1_0_left_it(url)
        yield url


@pytest.fixture
def upgraded(url_0_1_0: str) -> Iterator[Service]:
    """Today's service started on the 0.1.0 database (it migrates the schema on start)."""
    service = bootstrap(settings_for(url_0_1_0))
    yield service
    service.close()


def test_a_0_1_0_database_loads_to_the_state_0_1_0_gave_it(
    upgraded: Service, url_0_1_0: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = states_0_1_0_loaded()
    assert {n: state(upgraded.sessions.get_session(OLD_SCOPE, n)) for n in NUMBERS} == expected

    use_other_rules(monkeypatch)  # today's rules change: what 0.1.0 recorded does not
    assert {n: state(upgraded.sessions.get_session(OLD_SCOPE, n)) for n in NUMBERS} == expected
    with ColdLoad(url_0_1_0) as cold:
        assert {n: state(cold.session(session_uuid(n))) for n in NUMBERS} == expected
        assert cold.read_after == [None, None, 1002, None], "session 3 not loaded from 0.1.0's snapshot"
        assert {n: state(from_history(cold.log, session_uuid(n))) for n in NUMBERS} == expected


def test_a_0_1_0_database_finds_sessions_by_the_conversations_0_1_0_linked(upgraded: Service) -> None:
    """Migration 3 filled the directory's conversations by loading each session from the log."""
    found = {
        conversation_id: [s.number for s in upgraded.sessions.list_sessions(OLD_SCOPE, Page(), conversation_id)]
        for conversation_id in ("c-1", "c-2", "42", "late", "other")
    }
    assert found == {"c-1": [1], "c-2": [], "42": [2], "late": [3], "other": []}


def test_a_0_1_0_session_goes_on_with_recorded_outcomes(
    upgraded: Service, url_0_1_0: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled = upgraded.sessions.handle_events(
        OLD_SCOPE,
        1,
        [
            raw_event(event_type="session_status_changed", data={"new_status": "active"}),
            raw_event(event_type="conversation_started", data={"conversation_id": "c-9"}),
        ],
    )
    assert state(handled.session) == State("active", "c-1", 8, 9)
    stored = upgraded.log.recorder.select_events(session_uuid(1))
    assert ["changes" in json.loads(row.state) for row in stored] == [False] * 7 + [True] * 2
    use_other_rules(monkeypatch)
    with ColdLoad(url_0_1_0) as cold:
        assert state(cold.session(session_uuid(1))) == State("active", "c-1", 8, 9)


def test_the_read_model_serves_0_1_0_events_as_they_were_sent(upgraded: Service) -> None:
    for number in (1, 2):
        sent = [json.loads(row.state) for row in rows_0_1_0_wrote() if row.originator_id == session_uuid(number)]
        events = upgraded.sessions.get_events(OLD_SCOPE, number, EventQuery(limit=100))
        assert [(e.sequence, e.event_type, e.data_json, e.metadata_json, e.event_id.hex) for e in events] == [
            (s["sequence"], s["event_type"], s["data"], s["metadata"], s["event_id"]["_data_"]) for s in sent[1:]
        ]
    third = upgraded.sessions.get_events(OLD_SCOPE, SNAPSHOTTED, EventQuery(limit=10, offset=1000))
    assert [e.sequence for e in third] == [1001, 1002, 1003]


def test_the_http_api_shows_a_0_1_0_database_as_0_1_0_left_it(url_0_1_0: str, tmp_path: Path) -> None:
    server = ServerProcess(url_0_1_0, tmp_path)
    try:
        headers = {"Authorization": f"Bearer {server.token(OLD_SCOPE)}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            for number, expected in states_0_1_0_loaded().items():
                answer = client.get(f"/api/sessions/{number}")
                assert answer.status_code == 200, answer.text
                shown = answer.json()["data"]
                assert (shown["status"], shown["external_conversation_id"], shown["event_count"]) == (
                    expected.status,
                    expected.external_conversation_id,
                    expected.event_count,
                )
            linked = client.get("/api/sessions", params={"conversation_id": "42"})
            assert [s["id"] for s in linked.json()["data"]] == [2]
            events = client.get("/api/sessions/1/events")
            assert events.status_code == 200, events.text
            assert [e["data"] for e in events.json()["data"]][2:5] == [
                {"new_status": "failed"},
                {"new_status": "exploded"},
                {"tool_name": "Read", "note": "café ✓"},
            ]
    finally:
        server.stop()
