"""Appends write their events into `session_events` themselves, in their own transaction, when
that read model has caught up with the log (ADR 0017): readable, and their notifications ready,
the moment the append commits. Otherwise (the projection behind, failed, or the rows refused)
they leave it to the projector, which then finds exactly the events it has not projected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventsourcing.persistence import DataError

from adapters.notifications.feed import NotificationFeed
from adapters.readmodel.projection import tracked_position
from adapters.readmodel.session_events import NAME
from application.notifications import Cursor
from application.queries import EventQuery
from application.scope import Scope
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import settings_for
from tests.factories import raw_event


@pytest.fixture
def quiet(database_url: str) -> Iterator[Service]:
    """A service whose projectors never run by themselves: what moves `session_events` is seen."""
    service = bootstrap(settings_for(database_url), run_projection=False)
    service.projection.catch_up()
    yield service
    service.close()


def head(service: Service) -> int:
    return service.projection.head()


def sequences(service: Service, scope: Scope, number: int) -> list[int]:
    return [e.sequence for e in service.sessions.get_events(scope, number, EventQuery(limit=1000))]


def test_an_append_projects_its_events_and_makes_its_notification_ready(quiet: Service, scope: Scope) -> None:
    number = quiet.sessions.create_session(scope).number
    before = Cursor(tracked_position(quiet.database, NAME))
    quiet.sessions.handle_events(scope, number, [raw_event(), raw_event(), raw_event()])
    assert tracked_position(quiet.database, NAME) == head(quiet)  # no projector ran
    assert sequences(quiet, scope, number) == [1, 2, 3]
    ready = NotificationFeed(quiet.database).replay(scope, before, 10)
    assert ready is not None and [n.payload["event_count"] for n in ready] == [3]


def test_behind_or_failed_the_projection_is_left_to_its_projector(quiet: Service, scope: Scope) -> None:
    number = quiet.sessions.create_session(scope).number
    quiet.log.projects_session_events = False
    quiet.sessions.handle_event(scope, number, raw_event())  # the projection is now behind
    quiet.log.projects_session_events = True
    quiet.sessions.handle_event(scope, number, raw_event())
    assert tracked_position(quiet.database, NAME) < head(quiet)  # the append left it behind
    quiet.projection.catch_up()
    assert sequences(quiet, scope, number) == [1, 2]  # each exactly once
    quiet.sessions.handle_event(scope, number, raw_event())
    assert tracked_position(quiet.database, NAME) == head(quiet)  # caught up: appends project again

    with quiet.database.transaction(commit=True) as cursor:
        cursor.execute(
            quiet.database.statement("UPDATE projection_tracking SET state = 'failed' WHERE name = %s"), (NAME,)
        )
    quiet.sessions.handle_event(scope, number, raw_event())
    assert tracked_position(quiet.database, NAME) < head(quiet)  # a failed projection is not touched
    quiet.projection.retry()
    quiet.projection.catch_up()
    assert sequences(quiet, scope, number) == [1, 2, 3, 4]


def test_rows_the_read_model_refuses_never_cost_the_events(
    quiet: Service, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = quiet.sessions.create_session(scope).number
    recorder = quiet.log.recorder
    insert_group = recorder.insert_group  # type: ignore[attr-defined]

    def refusing(rows, *, project=True):  # type: ignore[no-untyped-def]
        if project:
            raise DataError("invalid input syntax for type json")
        return insert_group(rows, project=project)

    monkeypatch.setattr(recorder, "insert_group", refusing)
    handled = quiet.sessions.handle_event(scope, number, raw_event())
    assert handled.new_event_count == 1
    monkeypatch.undo()
    quiet.projection.catch_up()
    assert sequences(quiet, scope, number) == [1]
