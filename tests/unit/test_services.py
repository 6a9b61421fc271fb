"""The use cases, against fakes of their ports."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from uuid import UUID, uuid4

import pytest

from application.errors import ConcurrentUpdate, EventRejected, SessionNotFound
from application.notifications import Announcement
from application.queries import EventQuery, Page, RecordedEvent
from application.scope import Scope
from application.services import SessionFields, SessionService
from domain.session import Session
from tests.factories import raw_event

OWNER = Scope(account_id=1, user_id=10)
STRANGER = Scope(account_id=1, user_id=11)


class FakeStore:
    def __init__(self) -> None:
        self.sessions: dict[int, Session] = {}
        self.event_ids: dict[int, set[UUID]] = {}
        self.conflicts_to_raise = 0
        self.saves = 0
        self.announcements: list[Announcement | None] = []

    def next_number(self) -> int:
        return len(self.sessions) + 1

    def get(self, number: int) -> Session:
        if number not in self.sessions:
            raise SessionNotFound(number)
        return copy.deepcopy(self.sessions[number])

    def save(self, session: Session, announcement: Announcement | None = None) -> None:
        if self.conflicts_to_raise:
            self.conflicts_to_raise -= 1
            raise ConcurrentUpdate("someone else saved first")
        self.announcements.append(announcement)
        pending = session.collect_events()
        self.event_ids.setdefault(session.number, set()).update(
            e.event_id for e in pending if isinstance(e, Session.EventRecorded)
        )
        self.sessions[session.number] = session
        self.saves += 1

    def recorded_event_ids(self, number: int, event_ids: Collection[UUID]) -> set[UUID]:
        return self.event_ids.get(number, set()) & set(event_ids)

    def numbers_in_scope(self, scope: Scope, page: Page) -> Sequence[int]:
        mine = sorted(
            (n for n, s in self.sessions.items() if s.belongs_to(scope.account_id, scope.user_id)), reverse=True
        )
        return mine[page.offset : page.offset + page.limit]


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
def service(store: FakeStore, views: FakeViews) -> SessionService:
    return SessionService(store, views, sleep=lambda _: None)


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
    store.conflicts_to_raise = 3
    handled = service.handle_events(OWNER, number, [raw_event(), raw_event()])
    assert handled.session.event_count == 2 and store.sessions[number].event_count == 2


def test_ids_already_recorded_are_not_recorded_again(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    first, second = str(uuid4()), str(uuid4())
    service.handle_events(OWNER, number, [raw_event(id=first)])
    saves = store.saves
    again = service.handle_events(OWNER, number, [raw_event(id=first), raw_event(id=second), raw_event(id=second)])
    assert again.new_event_count == 1 and again.session.event_count == 2
    retry = service.handle_event(OWNER, number, raw_event(id=first))
    assert retry.new_event_count == 0 and store.saves == saves + 1


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


def test_each_recording_call_announces_what_it_newly_recorded(service: SessionService, store: FakeStore) -> None:
    number = service.create_session(OWNER).number
    event_id = str(uuid4())
    service.handle_events(OWNER, number, [raw_event(id=event_id), raw_event()])
    service.handle_event(OWNER, number, raw_event(event_type="session_status_changed", data={"new_status": "failed"}))
    service.handle_event(OWNER, number, raw_event(id=event_id))  # a retry records nothing, announces nothing
    assert store.announcements[1:] == [
        Announcement(number, 1, 10, event_count=2),
        Announcement(
            number, 1, 10, event_count=1, session_update={"status": "failed", "external_conversation_id": None}
        ),
    ]
