"""The use cases, against fakes of their ports."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from uuid import uuid4

import pytest

from application import group_commit
from application.errors import ConcurrentUpdate, EventRejected, InvalidQuery, SessionNotFound
from application.group_commit import MAX_ATTEMPTS, GroupCommit
from application.notifications import Announcement
from application.queries import EventQuery, Page, RecordedEvent, SessionStats
from application.scope import Scope
from application.services import SessionFields, SessionService
from tests.factories import raw_event
from tests.unit.fakes import FakeStore

OWNER = Scope(account_id=1, user_id=10)
STRANGER = Scope(account_id=1, user_id=11)


class FakeStats:
    def __init__(self) -> None:
        self.asked: list[int] = []

    def stats(self, session_id: int) -> SessionStats:
        self.asked.append(session_id)
        return SessionStats(session_id=session_id, event_count=7)


class FakeViews:
    def __init__(self) -> None:
        self.queries: list[tuple[int, EventQuery]] = []

    def events(self, session_id: int, query: EventQuery) -> Sequence[RecordedEvent]:
        self.queries.append((session_id, query))
        return []


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def views() -> FakeViews:
    return FakeViews()


@pytest.fixture
def service(store: FakeStore, views: FakeViews) -> Iterator[SessionService]:
    running = SessionService(store, views, FakeStats(), GroupCommit(store, sleep=lambda _: None))
    yield running
    running.close()


def test_create_and_get_a_session(service: SessionService) -> None:
    created = service.create_session(OWNER, SessionFields(agent="claude", state_json='{"k": 1}'))
    got = service.get_session(OWNER, created.number)
    assert (got.number, got.agent, got.state_json, got.account_id, got.user_id) == (1, "claude", '{"k": 1}', 1, 10)


def test_a_session_outside_the_scope_is_not_found(service: SessionService) -> None:
    created = service.create_session(OWNER)
    for call in (
        lambda: service.get_session(STRANGER, created.number),
        lambda: service.handle_event(STRANGER, created.number, raw_event()),
        lambda: service.get_events(STRANGER, created.number, EventQuery()),
    ):
        with pytest.raises(SessionNotFound):
            call()


def test_not_found_comes_before_validation(service: SessionService) -> None:
    with pytest.raises(SessionNotFound):
        service.handle_event(OWNER, 99, {"event_type": b"5"})


def test_handle_event_returns_the_session_as_updated(service: SessionService) -> None:
    number = service.create_session(OWNER).number
    handled = service.handle_event(
        OWNER, number, raw_event(event_type="conversation_started", data={"conversation_id": "c"})
    )
    assert handled.session.external_conversation_id == "c" and handled.new_event_count == 1


def test_a_conflict_is_retried_until_it_succeeds(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    store.conflicts[number] = 3
    handled = service.handle_events(OWNER, number, [raw_event(), raw_event()])
    assert handled.session.event_count == 2 and store.sessions[number].event_count == 2


def test_ids_already_recorded_are_not_recorded_again(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    first, second = str(uuid4()), str(uuid4())
    service.handle_events(OWNER, number, [raw_event(id=first)])
    again = service.handle_events(OWNER, number, [raw_event(id=first), raw_event(id=second), raw_event(id=second)])
    assert again.new_event_count == 1 and again.session.event_count == 2
    saves = len(store.groups)
    retry = service.handle_event(OWNER, number, raw_event(id=first))
    assert retry.new_event_count == 0 and store.sessions[number].event_count == 2
    assert len(store.groups) == saves + 1  # the save found the id recorded; decided again, nothing to save


def test_an_invalid_event_in_a_batch_stores_nothing(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    with pytest.raises(EventRejected) as rejected:
        service.handle_events(OWNER, number, [raw_event(), raw_event(sent_at="never")])
    assert rejected.value.index == 1
    assert store.sessions[number].event_count == 0


def test_reading_events_asks_the_read_model_for_the_session(service: SessionService, views: FakeViews) -> None:
    number = service.create_session(OWNER).number
    service.get_events(OWNER, number, EventQuery(limit=5))
    assert views.queries == [(number, EventQuery(limit=5))]


def test_listing_shows_only_the_callers_sessions_newest_first(service: SessionService) -> None:
    mine = [service.create_session(OWNER).number for _ in range(3)]
    service.create_session(STRANGER)
    assert [s.number for s in service.list_sessions(OWNER, Page(limit=2))] == mine[::-1][:2]


def test_listing_by_conversation_shows_only_the_sessions_it_linked(service: SessionService) -> None:
    linked, other = service.create_session(OWNER).number, service.create_session(OWNER).number
    started = raw_event(event_type="conversation_started", data={"conversation_id": "conv-x"})
    service.handle_event(OWNER, linked, started)
    assert [s.number for s in service.list_sessions(OWNER, Page(), conversation_id="conv-x")] == [linked]
    assert [s.number for s in service.list_sessions(OWNER, Page())] == [other, linked]
    assert service.list_sessions(OWNER, Page(), conversation_id="conv-y") == []


def test_each_recording_call_announces_what_it_newly_recorded(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    event_id = str(uuid4())
    service.handle_events(OWNER, number, [raw_event(id=event_id), raw_event()])
    service.handle_event(OWNER, number, raw_event(event_type="session_status_changed", data={"new_status": "failed"}))
    service.handle_event(OWNER, number, raw_event(id=event_id))  # a retry records nothing, announces nothing
    assert store.announcements == [
        Announcement(number, 1, 10, event_count=2),
        Announcement(
            number, 1, 10, event_count=1, session_update={"status": "failed", "external_conversation_id": None}
        ),
    ]


def test_create_session_keeps_every_field_and_defaults_to_none(service: SessionService) -> None:
    full = service.create_session(OWNER, SessionFields("coding", "claude", "vscode", '{"k": 1}'))
    bare = service.create_session(OWNER)
    assert [(s.type, s.agent, s.environment, s.state_json) for s in (full, bare)] == [
        ("coding", "claude", "vscode", '{"k": 1}'),
        (None, None, None, None),
    ]
    assert (full.number, bare.number) == (1, 2)


def test_a_missing_session_is_named_by_its_id(service: SessionService) -> None:
    service.create_session(OWNER)
    for scope, number in ((OWNER, 99), (STRANGER, 1)):
        with pytest.raises(SessionNotFound) as missing:
            service.get_session(scope, number)
        assert (missing.value.session_id, str(missing.value)) == (number, f"session {number} not found")


def test_the_path_session_id_is_checked_against_the_body(service: SessionService) -> None:
    number = service.create_session(OWNER).number
    assert service.handle_event(OWNER, number, raw_event(session_id=number)).new_event_count == 1
    assert service.handle_events(OWNER, number, [raw_event(session_id=str(number))]).new_event_count == 1
    with pytest.raises(EventRejected):
        service.handle_event(OWNER, number, raw_event(session_id=number + 1))


def test_a_call_that_records_nothing_new_answers_with_the_session(service: SessionService) -> None:
    number = service.create_session(OWNER).number
    event_id = str(uuid4())
    service.handle_event(OWNER, number, raw_event(id=event_id))
    retry = service.handle_event(OWNER, number, raw_event(id=event_id))
    assert (retry.session.number, retry.session.event_count, retry.new_event_count) == (number, 1, 0)


def test_each_attempt_takes_the_session_once_and_reads_it_afresh_after_a_conflict(
    service: SessionService, store: FakeStore
) -> None:
    number = service.create_session(OWNER).number
    service.handle_event(OWNER, number, raw_event())
    assert (store.loads, len(store.groups)) == ([(number, False)], 2)  # the creation is the first save
    store.conflicts[number] = 2
    service.handle_event(OWNER, number, raw_event())
    assert store.loads[1:] == [(number, False), (number, True), (number, True)]
    assert len(store.groups) == 2 + 3


def test_after_a_conflict_the_events_are_decided_again_on_a_fresh_session(
    service: SessionService, store: FakeStore
) -> None:
    """The attempt that lost recorded the events on its copy of the session; the next attempt
    must start from the stored session, not add them a second time to that copy."""
    number = service.create_session(OWNER).number
    store.conflicts[number] = 1
    handled = service.handle_events(OWNER, number, [raw_event(), raw_event()])
    assert (handled.session.event_count, store.sessions[number].event_count, handled.new_event_count) == (2, 2, 2)


def test_conflicts_are_retried_up_to_max_attempts_then_raised(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    store.conflicts[number] = MAX_ATTEMPTS - 1
    assert service.handle_event(OWNER, number, raw_event()).session.event_count == 1
    assert len(store.groups) == 1 + MAX_ATTEMPTS
    store.groups.clear()
    store.conflicts[number] = MAX_ATTEMPTS
    with pytest.raises(ConcurrentUpdate):
        service.handle_event(OWNER, number, raw_event())
    assert len(store.groups) == MAX_ATTEMPTS
    assert store.sessions[number].event_count == 1


def test_the_pause_between_attempts_is_a_random_jitter_growing_to_20_ms(
    store: FakeStore, views: FakeViews, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[object] = []
    monkeypatch.setattr(group_commit.random, "uniform", lambda low, high: ("uniform", low, high))
    service = SessionService(store, views, FakeStats(), GroupCommit(store, sleep=pauses.append))
    number = service.create_session(OWNER).number
    store.conflicts[number] = 12
    service.handle_event(OWNER, number, raw_event())
    service.close()
    assert pauses == [("uniform", 0, 0.002 * min(retry, 10)) for retry in range(1, 13)]
    assert pauses[-1] == ("uniform", 0, 0.02)


def test_notes_are_logged_once_after_the_save_whatever_the_retries(
    service: SessionService, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    number = service.create_session(OWNER).number
    store.conflicts[number] = 2
    with caplog.at_level(logging.DEBUG, logger="session_events.sessions"):
        service.handle_event(OWNER, number, raw_event(event_type="error_occurred", data={"message": "boom"}))
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("session_events.sessions", logging.ERROR, f"session {number}: client reported an error (error_occurred)")
    ]


def test_notes_of_a_call_that_fails_are_not_logged(
    service: SessionService, store: FakeStore, caplog: pytest.LogCaptureFixture
) -> None:
    number = service.create_session(OWNER).number
    store.conflicts[number] = MAX_ATTEMPTS
    with caplog.at_level(logging.DEBUG, logger="session_events.sessions"), pytest.raises(ConcurrentUpdate):
        service.handle_event(OWNER, number, raw_event(event_type="error_occurred", data={"message": "boom"}))
    assert caplog.records == []


def test_stats_are_read_for_the_callers_own_session_only(service: SessionService) -> None:
    number = service.create_session(OWNER).number
    assert service.get_stats(OWNER, number) == SessionStats(session_id=number, event_count=7)
    with pytest.raises(SessionNotFound):
        service.get_stats(STRANGER, number)


def test_a_session_as_of_a_sequence_is_as_its_first_events_left_it(service: SessionService) -> None:
    number = service.create_session(OWNER).number
    service.handle_event(OWNER, number, raw_event(event_type="conversation_started", data={"conversation_id": "c"}))
    service.handle_events(
        OWNER,
        number,
        [raw_event(), raw_event(event_type="session_status_changed", data={"new_status": "complete"})],
    )
    seen = [
        (s.event_count, s.external_conversation_id, s.status)
        for s in (service.get_session_as_of(OWNER, number, n) for n in range(4))
    ]
    assert seen == [(0, None, "active"), (1, "c", "active"), (2, "c", "active"), (3, "c", "complete")]


@pytest.mark.parametrize("sequence", [-1, 3, 10**30])
def test_a_sequence_outside_the_session_is_an_invalid_query(service: SessionService, sequence: int) -> None:
    number = service.create_session(OWNER).number
    service.handle_events(OWNER, number, [raw_event(), raw_event()])
    with pytest.raises(InvalidQuery) as refused:
        service.get_session_as_of(OWNER, number, sequence)
    assert refused.value.errors == {"sequence": ["must be between 0 and 2, the session's event count"]}


@pytest.mark.parametrize("sequence", [0, -1, 5])
def test_a_foreign_or_missing_session_is_not_found_whatever_the_sequence(
    service: SessionService, store: FakeStore, sequence: int
) -> None:
    number = service.create_session(OWNER).number
    for scope, session_id in ((STRANGER, number), (OWNER, number + 1)):
        with pytest.raises(SessionNotFound):
            service.get_session_as_of(scope, session_id, sequence)
    assert store.loads_as_of == []  # the past of a foreign session is never even read


def test_a_conversation_id_with_a_nul_is_an_invalid_query(service: SessionService) -> None:
    with pytest.raises(InvalidQuery) as refused:
        service.list_sessions(OWNER, Page(), conversation_id="a\x00b")
    assert refused.value.errors == {"conversation_id": ["is invalid"]}
