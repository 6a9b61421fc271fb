"""One transaction for several sessions, through the real stores (SQLite and PostgreSQL alike):
a session another process saved first, or one that is gone, is left out without failing the
others, and each call of the group announces at its own last event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from uuid import uuid4

import pytest

from application.notifications import Announcement
from application.queries import Page
from application.recording import CallAnnounced, SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import settings_for
from tests.factories import new_event, raw_event


@pytest.fixture
def other_process(database_url: str) -> Iterator[Service]:
    """A second service on the same database, with its own cache: another process."""
    other = bootstrap(settings_for(database_url), run_projection=False)
    yield other
    other.close()


def test_a_session_saved_meanwhile_by_another_process_is_left_out_and_the_others_saved(
    service: Service, other_process: Service, scope: Scope
) -> None:
    stale_number = service.sessions.create_session(scope).number
    fresh_number = service.sessions.create_session(scope).number
    service.sessions.handle_event(scope, stale_number, raw_event())  # cached here at 1 event
    other_process.sessions.handle_event(scope, stale_number, raw_event())  # the other moves it to 2

    copies = service.store.for_update([stale_number, fresh_number])
    for session in copies.values():
        session.record([new_event()])
    outcomes = service.store.save_changes([SessionChanges(copies[stale_number]), SessionChanges(copies[fresh_number])])

    assert outcomes == {stale_number: SaveOutcome.CONFLICT, fresh_number: SaveOutcome.SAVED}
    assert other_process.sessions.get_session(scope, stale_number).event_count == 2  # nothing of it was written
    assert other_process.sessions.get_session(scope, fresh_number).event_count == 1
    assert service.store.for_update([stale_number])[stale_number].event_count == 1  # as this process saw it
    refreshed = service.store.for_update([stale_number], refresh=[stale_number])[stale_number]
    assert refreshed.event_count == 2


def test_a_session_gone_from_the_directory_is_left_out_and_the_others_saved(service: Service, scope: Scope) -> None:
    gone = service.sessions.create_session(scope).number
    kept = service.sessions.create_session(scope).number
    copies = service.store.for_update([gone, kept])
    with service.database.transaction(commit=True) as cursor:  # as an erasure leaves it
        cursor.execute(service.database.statement("DELETE FROM session_directory WHERE number = %s"), (gone,))
    for session in copies.values():
        session.record([new_event()])
    outcomes = service.store.save_changes([SessionChanges(copies[gone]), SessionChanges(copies[kept])])
    assert outcomes == {gone: SaveOutcome.GONE, kept: SaveOutcome.SAVED}
    assert service.log.recorder.select_events(copies[gone].id, gt=1) == []  # nothing appended to it
    assert service.store.for_update([gone]) == {}


def test_each_call_of_a_group_is_announced_at_the_log_position_of_its_last_event(
    service: Service, scope: Scope
) -> None:
    number = service.sessions.create_session(scope).number
    session = service.store.for_update([number])[number]
    announced = []
    for count in (2, 1):
        session.record([new_event() for _ in range(count)])
        announcement = Announcement(number, scope.account_id, scope.user_id, event_count=count)
        announced.append(CallAnnounced(announcement, session.version))
    assert service.store.save_changes([SessionChanges(session, announced)]) == {number: SaveOutcome.SAVED}

    notifications = service.log.recorder.select_notifications(start=0, limit=10_000)
    positions = {(n.originator_id, n.originator_version): n.id for n in notifications}
    rows = service.database.fetch_all(
        "SELECT position, payload FROM session_feed WHERE session_id = %s ORDER BY position", (number,)
    )
    assert [(r["position"], json.loads(r["payload"])["event_count"]) for r in rows] == [
        (positions[(session.id, 3)], 2),
        (positions[(session.id, 4)], 1),
    ]


def test_a_new_session_and_its_events_are_saved_with_its_directory_row_in_one_group(
    service: Service, scope: Scope
) -> None:
    number = service.store.next_number()
    created = Session(number=number, account_id=scope.account_id, user_id=scope.user_id)
    created.record([new_event()])
    assert service.store.save_changes([SessionChanges(created)]) == {number: SaveOutcome.SAVED}
    assert service.sessions.get_session(scope, number).event_count == 1
    assert [s.number for s in service.sessions.list_sessions(scope, Page())] == [number]


def test_a_session_that_already_recorded_a_client_chosen_id_it_is_given_is_left_out(
    service: Service, scope: Scope
) -> None:
    """A client retrying: the save looks the id up under the lock instead of a read before."""
    retried, other = service.sessions.create_session(scope).number, service.sessions.create_session(scope).number
    event_id = uuid4()
    service.sessions.handle_event(scope, retried, raw_event(id=str(event_id)))
    copies = service.store.for_update([retried, other])
    copies[retried].record([new_event(event_id=event_id, id_from_client=True)])
    copies[other].record([new_event(event_id=uuid4(), id_from_client=True)])
    outcomes = service.store.save_changes(
        [
            SessionChanges(copies[retried], unverified_ids=frozenset({event_id})),
            SessionChanges(copies[other], unverified_ids=frozenset(e.event_id for e in copies[other].pending_events)),
        ]
    )
    assert outcomes == {retried: SaveOutcome.CONFLICT, other: SaveOutcome.SAVED}
    assert service.sessions.get_session(scope, retried).event_count == 1
    assert service.sessions.get_session(scope, other).event_count == 1
