"""One transaction for several sessions, through the real stores (SQLite and PostgreSQL alike):
a session another process saved first, or one that is gone, is left out without failing the
others, and each call of the group announces at its own last event."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from psycopg import ClientCursor
from psycopg.rows import dict_row

from adapters.eventstore.group_write import group_rows
from adapters.eventstore.recorders import _PLANNING, SessionLogPostgresRecorder
from application.notifications import Announcement
from application.queries import Page
from application.recording import CallAnnounced, SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import settings_for, store_url
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


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_the_postgresql_group_statement_reads_no_table_whole_even_planned_on_a_young_database(
    tmp_path: Path,
) -> None:
    """The statement is planned once per connection, as the first save on it finds the tables,
    and keeps that plan: one made while the tables were nearly empty must still find rows by
    index once the log is large (a sequential scan in the conflict check made every save slower
    as the log grew). The statement is prepared and run as a save runs it (in a transaction rolled
    back), then its kept plan is read with EXPLAIN EXECUTE."""
    with store_url("postgres", tmp_path) as url:
        young = bootstrap(settings_for(url), run_projection=False)
        try:
            scope = Scope(account_id=1, user_id=2)
            number = young.sessions.create_session(scope).number
            session = young.store.for_update([number])[number]
            session.record([new_event(id_from_client=True), new_event()])
            announcement = Announcement(number, scope.account_id, scope.user_id, event_count=2)
            changes = SessionChanges(
                session,
                [CallAnnounced(announcement, session.version)],
                frozenset(e.event_id for e in session.pending_events if isinstance(e, Session.EventRecorded)),
            )
            recorder = young.log.recorder
            assert isinstance(recorder, SessionLogPostgresRecorder)
            params = recorder._group_params(group_rows([changes], young.log.mapper), True)
            statement = recorder._group_statement.as_string()
            # Its parameters in the order psycopg numbers them ($1, $2, ...), each with its cast.
            placeholders = list(dict.fromkeys(re.findall(r"%\(\w+\)[sb](?:::\w+(?:\[\])?)?", statement)))
            with (
                recorder.datastore.get_connection() as conn,
                conn.cursor() as cursor,
                conn.transaction(force_rollback=True),
            ):
                cursor.execute(_PLANNING, prepare=True)  # as each save's transaction does
                cursor.execute(recorder._group_statement, params, prepare=True)
                cursor.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%%WITH input AS%%'")
                [prepared] = cursor.fetchall()
                # EXECUTE's arguments, bound by this process (a utility statement cannot type them)
                arguments = ", ".join(p.replace(")b", ")s") for p in placeholders)
                explain = ClientCursor(conn, row_factory=dict_row)
                explain.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {prepared['name']}({arguments})", params)
                [row] = explain.fetchall()
        finally:
            young.close()
    nodes = list(_plan_nodes(row["QUERY PLAN"][0]["Plan"]))
    read = {n["Relation Name"] for n in nodes if "Relation Name" in n and n["Node Type"] != "ModifyTable"}
    assert read >= {"sessionlog_events", "session_directory", "session_event_ids", "projection_tracking"}
    assert [n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"] == []
