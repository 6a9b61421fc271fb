"""A session as it stood after its N-th event, read from the real stores (SQLite and PostgreSQL):
right on both sides of a snapshot, and never leaving an old version in the aggregate cache."""

from __future__ import annotations

import pytest

from adapters.eventstore.store import EventSourcedSessionStore
from application.errors import InvalidQuery, SessionNotFound
from application.queries import EventQuery
from application.scope import Scope
from application.validation import RawFields
from domain.session import Session
from entrypoints.bootstrap import Service
from tests.factories import raw_event

STATUSES = ["complete", "failed", "cancelled", "active"]
LENGTH = 2_345
BATCH = 469  # not a divisor of the snapshot interval: snapshots fall inside batches' reach


def event_number(k: int) -> RawFields:
    """The k-th event (1-based) of the long session: every 97th changes the status, the 3rd
    links the conversation."""
    if k == 3:
        return raw_event(event_type="conversation_started", data={"conversation_id": "conv-3", "k": k})
    if k % 97 == 0:
        return raw_event(event_type="session_status_changed", data={"new_status": STATUSES[(k // 97) % 4], "k": k})
    return raw_event(data={"k": k})


def expected_after(n: int) -> tuple[int, str, str | None]:
    """(event_count, status, external_conversation_id) after the first n events."""
    changes = [k for k in range(97, n + 1, 97)]
    status = STATUSES[(changes[-1] // 97) % 4] if changes else "active"
    return n, status, "conv-3" if n >= 3 else None


@pytest.fixture(scope="module")
def long_session(service: Service) -> tuple[Scope, int]:
    scope = Scope(account_id=987_654_321, user_id=1)  # a scope no other test uses
    number = service.sessions.create_session(scope).number
    for start in range(1, LENGTH + 1, BATCH):
        batch = [event_number(k) for k in range(start, min(start + BATCH, LENGTH + 1))]
        service.sessions.handle_events(scope, number, batch)
    return scope, number


def snapshot_sequences(service: Service, number: int) -> list[int]:
    """The event counts at which the store holds a snapshot of the session."""
    assert service.log.snapshots is not None
    stored = service.log.snapshots.recorder.select_events(Session.create_id(number))
    return [snapshot.originator_version - 1 for snapshot in stored]


def cached(service: Service, number: int) -> Session | None:
    return service.store.cache.get(number)


def test_every_point_of_a_long_session_reads_as_its_events_left_it(
    service: Service, long_session: tuple[Scope, int]
) -> None:
    scope, number = long_session
    snapshots = snapshot_sequences(service, number)
    assert len(snapshots) >= 2, snapshots  # the session spans several snapshots
    points = {0, 1, 2, 3, 96, 97, 98, LENGTH - 1, LENGTH}
    for at in snapshots:
        points |= {at - 1, at, at + 1}
    for n in sorted(p for p in points if p <= LENGTH):
        past = service.sessions.get_session_as_of(scope, number, n)
        assert (past.event_count, past.status, past.external_conversation_id) == expected_after(n), n
        assert past.version == n + 1
        if n == 0:
            assert past.modified_on == past.created_on
        else:  # `updated_at` is the time the N-th event was recorded
            [event] = service.sessions.get_events(scope, number, EventQuery(limit=1, offset=n - 1))
            assert (event.sequence, past.modified_on) == (n, event.received_at), n


def test_a_read_of_the_past_never_reaches_the_aggregate_cache(
    service: Service, long_session: tuple[Scope, int]
) -> None:
    scope, number = long_session
    current = cached(service, number)
    assert current is not None and current.event_count == LENGTH
    for n in (0, 1500, LENGTH - 1):
        service.sessions.get_session_as_of(scope, number, n)
        still = cached(service, number)
        assert still is not None and still.event_count == LENGTH
    service.store.cache.evict(number)
    service.store.get_as_of(number, 10)
    assert cached(service, number) is None  # an old version is never put in the cache
    assert service.sessions.get_session(scope, number).event_count == LENGTH


def test_appending_after_reads_of_the_past_carries_on_from_the_present(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(scope, number, [raw_event() for _ in range(5)])
    assert service.sessions.get_session_as_of(scope, number, 2).event_count == 2
    handled = service.sessions.handle_event(
        scope, number, raw_event(event_type="session_status_changed", data={"new_status": "complete"})
    )
    assert (handled.session.event_count, handled.session.status) == (6, "complete")
    assert service.sessions.get_session_as_of(scope, number, 5).status == "active"
    assert service.sessions.get_session_as_of(scope, number, 6).status == "complete"


@pytest.mark.parametrize("sequence", [-1, LENGTH + 1, 10**20])
def test_a_sequence_outside_the_session_is_refused(
    service: Service, long_session: tuple[Scope, int], sequence: int
) -> None:
    scope, number = long_session
    with pytest.raises(InvalidQuery) as refused:
        service.sessions.get_session_as_of(scope, number, sequence)
    assert refused.value.errors == {"sequence": [f"must be between 0 and {LENGTH}, the session's event count"]}


def test_the_store_reads_a_session_as_created_and_refuses_a_sequence_it_never_reached(
    service: Service, scope: Scope
) -> None:
    store = EventSourcedSessionStore(service.log, service.database)
    number = service.sessions.create_session(scope).number
    service.sessions.handle_event(scope, number, raw_event())
    created = store.get_as_of(number, 0)
    assert (created.event_count, created.version, created.modified_on) == (0, 1, created.created_on)
    for beyond in (-1, 2):
        with pytest.raises(ValueError, match="event"):
            store.get_as_of(number, beyond)
    with pytest.raises(SessionNotFound):
        store.get_as_of(number + 10_000, 0)


def test_a_foreign_session_is_not_found_at_any_sequence(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    stranger = Scope(scope.account_id, scope.user_id + 100)
    for sequence in (0, -1, 1):
        with pytest.raises(SessionNotFound):
            service.sessions.get_session_as_of(stranger, number, sequence)
