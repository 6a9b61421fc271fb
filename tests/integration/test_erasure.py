"""Erasure on both stores, through the use cases and the store: what an erased session leaves
(a tombstone in the log, its `session_erased` notification, nothing else), and what cannot bring
it back: a writer in another process holding it cached, a projection that read its events just
before, a rebuild under way or run after (ADR 0013)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import eventsourcing.domain
import pytest

from adapters.database.base import Database
from adapters.erasure import LogErasure
from adapters.eventstore.store import EventSourcedSessionStore
from application.errors import SessionNotFound
from application.notifications import SESSION_ERASED, Announcement
from application.queries import EventQuery, Page
from application.recording import CallAnnounced, SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import STORES, settings_for
from tests.factories import new_event, raw_event
from tests.integration.stepping import Stepped, stepped_service
from tests.raw_database import database_bytes, holds

SCOPE = Scope(41, 42)
SESSION_TABLES = {
    "session_directory": "number",
    "session_event_ids": "session_id",
    "session_feed": "session_id",
    "session_events": "session_id",
    "session_stats": "session_id",
    "session_stats_open_calls": "session_id",
}


@pytest.fixture(params=STORES)
def stepped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stepped]:
    with stepped_service(request.param, tmp_path) as running:
        yield running


def record_activity(service: Service, number: int, marker: str) -> None:
    """One of each kind of event that reaches a table: a conversation, an open tool call (its
    name reaches session_stats and session_stats_open_calls), an error, metadata."""
    sessions = service.sessions
    sessions.handle_event(
        SCOPE, number, raw_event(event_type="conversation_started", data={"conversation_id": f"conv-{marker}"})
    )
    sessions.handle_events(
        SCOPE,
        number,
        [
            raw_event(data={"tool_name": f"tool-{marker}", "tool_use_id": f"use-{marker}"}, metadata={"m": marker}),
            raw_event(event_type="error_occurred", data={"message": f"error-{marker}"}),
        ],
    )


def catch_up(service: Service) -> None:
    for projector in service.projectors.values():
        projector.catch_up()


def rows_of(service: Service, number: int) -> dict[str, int]:
    """How many rows the session has in each table, the event store's own included."""
    db = service.database
    counts = {}
    for table, column in SESSION_TABLES.items():
        query = f"SELECT count(*) AS n FROM {table} WHERE {column} = %s"
        if table == "session_feed":
            query += f" AND kind <> '{SESSION_ERASED}'"
        counts[table] = int(db.fetch_all(query, (number,))[0]["n"])
    log_id = db.log_id(Session.create_id(number))
    log_tables = {"log": service.log.recorder, "snapshots": getattr(service.log.snapshots, "recorder", None)}
    for name, recorder in log_tables.items():
        table = recorder.events_table_name  # type: ignore[union-attr]
        query = f"SELECT count(*) AS n FROM {table} WHERE originator_id = %s"
        counts[name] = int(db.fetch_all(query, (log_id,))[0]["n"])
    return counts


def log_topics(service: Service, number: int) -> list[str]:
    db = service.database
    table = service.log.recorder.events_table_name  # type: ignore[attr-defined]
    query = f"SELECT topic FROM {table} WHERE originator_id = %s"
    return [row["topic"] for row in db.fetch_all(query, (db.log_id(Session.create_id(number)),))]


def test_an_erased_session_leaves_only_its_tombstone_and_its_notification(stepped: Stepped) -> None:
    service = stepped.service
    erased, kept = service.sessions.create_session(SCOPE), service.sessions.create_session(SCOPE)
    for session, marker in ((erased, "gone"), (kept, "kept")):
        record_activity(service, session.number, marker)
    service.sessions.handle_events(SCOPE, erased.number, [raw_event() for _ in range(1000)])  # and a snapshot
    catch_up(service)
    before = rows_of(service, erased.number)
    assert all(before.values()), before  # every table held some of it
    kept_before = rows_of(service, kept.number)

    service.erasure.erase_session(SCOPE, erased.number)

    assert rows_of(service, erased.number) == {**{table: 0 for table in before}, "log": 1}
    assert log_topics(service, erased.number) == ["domain.session:Session.Erased"]
    feed = service.database.fetch_all("SELECT kind, payload FROM session_feed WHERE session_id = %s", (erased.number,))
    assert [(row["kind"], json.loads(row["payload"])) for row in feed] == [
        (SESSION_ERASED, {"session_id": erased.number})
    ]
    catch_up(service)  # the projections meet the tombstone: nothing comes back, nothing else goes
    assert rows_of(service, erased.number) == {**{table: 0 for table in before}, "log": 1}
    assert rows_of(service, kept.number) == kept_before
    assert all(status.position == status.head for status in service.projection_statuses())


def test_an_erased_session_is_not_found_by_any_use_case(stepped: Stepped) -> None:
    service, sessions = stepped.service, stepped.service.sessions
    erased, kept = sessions.create_session(SCOPE), sessions.create_session(SCOPE)
    record_activity(service, erased.number, "gone")
    record_activity(service, kept.number, "kept")
    catch_up(service)
    sessions.get_session(SCOPE, erased.number)  # cached in this process

    service.erasure.erase_session(SCOPE, erased.number)
    catch_up(service)  # reads of the read models wait for the projections to pass the tombstone

    for read in (
        lambda: sessions.get_session(SCOPE, erased.number),
        lambda: sessions.get_session_as_of(SCOPE, erased.number, 1),
        lambda: sessions.get_events(SCOPE, erased.number, EventQuery()),
        lambda: sessions.get_stats(SCOPE, erased.number),
        lambda: sessions.handle_event(SCOPE, erased.number, raw_event()),
        lambda: service.erasure.erase_session(SCOPE, erased.number),
        lambda: service.log_export().scan(session_id=erased.number),
    ):
        with pytest.raises(SessionNotFound):
            read()
    assert [s.number for s in sessions.list_sessions(SCOPE, Page())] == [kept.number]
    assert sessions.list_sessions(SCOPE, Page(), conversation_id="conv-gone") == []
    exported = [e for page in service.log_export().scan().pages() for e in page]
    assert {e.session_id for e in exported} == {kept.number}
    assert len(sessions.get_events(SCOPE, kept.number, EventQuery())) == 3


def test_only_the_owner_can_erase_a_session(stepped: Stepped) -> None:
    service = stepped.service
    session = service.sessions.create_session(SCOPE)
    for stranger in (Scope(SCOPE.account_id, SCOPE.user_id + 1), Scope(SCOPE.account_id + 1, SCOPE.user_id)):
        with pytest.raises(SessionNotFound):
            service.erasure.erase_session(stranger, session.number)
    assert service.sessions.get_session(SCOPE, session.number).number == session.number
    for missing in (0, -1, session.number + 1000):
        with pytest.raises(SessionNotFound):
            service.erasure.erase_session(SCOPE, missing)


def test_a_writer_holding_the_session_cannot_bring_it_back(stepped: Stepped) -> None:
    """Two services on one store, as two processes: the other has the session cached, at a
    version the erasure then deletes (so its append would not conflict with any stored row)."""
    here = stepped.service
    there = bootstrap(settings_for(stepped.url), run_projection=False)
    try:
        session = here.sessions.create_session(SCOPE)
        here.sessions.handle_event(SCOPE, session.number, raw_event())
        there.sessions.get_session(SCOPE, session.number)  # cached there, at version 2
        stale = there.store.for_update([session.number])[session.number]
        here.sessions.handle_event(SCOPE, session.number, raw_event())  # version 3, here

        here.erasure.erase_session(SCOPE, session.number)  # versions 1 to 3 go; the tombstone is 4

        stale.record([new_event()])  # version 3 again, which no stored row holds any more
        announcement = Announcement(session.number, SCOPE.account_id, SCOPE.user_id, event_count=1)
        outcome = there.store.save_changes([SessionChanges(stale, [CallAnnounced(announcement, stale.version)])])
        assert outcome == {session.number: SaveOutcome.GONE}
        with pytest.raises(SessionNotFound):
            there.sessions.handle_event(SCOPE, session.number, raw_event())
        with pytest.raises(SessionNotFound):
            there.sessions.get_session(SCOPE, session.number)
        assert log_topics(here, session.number) == ["domain.session:Session.Erased"]
        assert rows_of(here, session.number)["session_event_ids"] == 0
    finally:
        there.close()


def test_a_snapshot_taken_after_the_erasure_is_not_written(stepped: Stepped) -> None:
    """A process takes a snapshot once its save has committed: the erasure may come in between."""
    here = stepped.service
    there = bootstrap(settings_for(stepped.url), run_projection=False)
    try:
        session = here.sessions.create_session(SCOPE)
        here.sessions.handle_events(SCOPE, session.number, [raw_event(data={"secret": "x"}) for _ in range(5)])
        saved = EventSourcedSessionStore(there.log, there.database).get(session.number)

        here.erasure.erase_session(SCOPE, session.number)
        there.log.snapshots.put([Session.Snapshot.take(saved)])  # type: ignore[union-attr]

        assert rows_of(here, session.number)["snapshots"] == 0
        kept = here.sessions.create_session(SCOPE)
        there.log.snapshots.put([Session.Snapshot.take(kept)])  # type: ignore[union-attr]
        assert rows_of(here, kept.number)["snapshots"] == 1
    finally:
        there.close()


@pytest.mark.parametrize("projection", ["session_events", "session_stats"])
def test_a_batch_read_before_the_erasure_is_not_written_after_it(stepped: Stepped, projection: str) -> None:
    service = stepped.service
    erased, kept = service.sessions.create_session(SCOPE), service.sessions.create_session(SCOPE)
    record_activity(service, erased.number, "gone")
    record_activity(service, kept.number, "kept")
    projector = service.projectors[projection]
    start = projector.position()
    batch, end = projector.read_log(start, 1000)
    assert {e.session_number for e in batch} == {erased.number, kept.number}

    service.erasure.erase_session(SCOPE, erased.number)
    with service.database.transaction(commit=True) as cursor:
        projector.apply_in(cursor, start, end, batch)  # as a projector that read the log just before

    assert _session_rows(service.database, projection, erased.number) == 0
    assert _session_rows(service.database, projection, kept.number) == (1 if projection == "session_stats" else 3)
    projector.catch_up()
    assert _session_rows(service.database, projection, erased.number) == 0


def _session_rows(db: Database, table: str, number: int) -> int:
    query = f"SELECT count(*) AS n FROM {table} WHERE session_id = %s"
    return int(db.fetch_all(query, (number,))[0]["n"])


def test_a_rebuild_during_or_after_an_erasure_does_not_bring_the_session_back(stepped: Stepped) -> None:
    service = stepped.service
    erased, kept = service.sessions.create_session(SCOPE), service.sessions.create_session(SCOPE)
    record_activity(service, erased.number, "gone")
    record_activity(service, kept.number, "kept")
    catch_up(service)
    kept_before = rows_of(service, kept.number)

    erased_at: list[int] = []

    def erase_once(position: int) -> None:
        """Runs between two batches of the new generation, which holds the session's rows by then."""
        if not erased_at and position > 3:
            erased_at.append(position)
            service.erasure.erase_session(SCOPE, erased.number)

    service.rebuild("session_events", on_progress=erase_once, batch_size=1)
    assert erased_at
    service.rebuild("session_stats", batch_size=1)
    assert rows_of(service, erased.number) == {**{table: 0 for table in SESSION_TABLES}, "log": 1, "snapshots": 0}
    for name in service.projectors:
        service.rebuild(name)  # from a log that holds only the tombstone of it
    assert rows_of(service, erased.number) == {**{table: 0 for table in SESSION_TABLES}, "log": 1, "snapshots": 0}
    assert rows_of(service, kept.number) == kept_before


def test_a_projection_that_meets_the_tombstone_erases_what_it_still_has(stepped: Stepped) -> None:
    """As a rebuild started during the erasure would: its tables, unknown to the erasure, still
    hold the session until it reaches the tombstone. Here the erasure knows no read model at all."""
    service = stepped.service
    erased, kept = service.sessions.create_session(SCOPE), service.sessions.create_session(SCOPE)
    record_activity(service, erased.number, "gone")
    record_activity(service, kept.number, "kept")
    catch_up(service)
    blind = LogErasure(service.log, service.database, models=())
    assert blind.erase([erased.number]) == [erased.number]
    assert _session_rows(service.database, "session_events", erased.number) == 3

    catch_up(service)

    for table in ("session_events", "session_stats", "session_stats_open_calls"):
        assert _session_rows(service.database, table, erased.number) == 0
    assert _session_rows(service.database, "session_events", kept.number) == 3


def test_deleted_rows_leave_no_copy_behind_in_the_database_files(stepped: Stepped) -> None:
    """Rows deleted before the erasure (tool calls completed, so no longer open) leave copies in
    the free space of pages that keep other sessions' rows: on SQLite, only rewriting the file
    (VACUUM) removes them; `pg_dump` shows live rows only."""
    service, marker = stepped.service, f"GONE{uuid.uuid4().hex}"
    erased, kept = service.sessions.create_session(SCOPE), service.sessions.create_session(SCOPE)
    for number, name in ((erased.number, marker), (kept.number, "kept")):
        calls = [raw_event(data={"tool_name": f"{name}-{k}", "tool_use_id": f"use-{k}"}) for k in range(300)]
        service.sessions.handle_events(SCOPE, number, calls)
    catch_up(service)
    results = [raw_event(event_type="tool_result", data={"tool_use_id": f"use-{k}"}) for k in range(300)]
    service.sessions.handle_events(SCOPE, erased.number, results)
    catch_up(service)
    assert holds(database_bytes(stepped.url), marker)

    service.erasure.erase_session(SCOPE, erased.number)
    catch_up(service)

    assert not holds(database_bytes(stepped.url), marker)


def prune(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, on the test's store."""
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "sessions", "prune", *args],
        env={**os.environ, "DATABASE_URL": url},
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=False,
    )


def test_prune_erases_the_sessions_idle_for_longer_than_asked(
    stepped: Stepped, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, sessions = stepped.service, stepped.service.sessions
    elsewhere = Scope(SCOPE.account_id + 1, SCOPE.user_id)
    with monkeypatch.context() as three_days_ago:  # the library's clock stamps every event
        moment = datetime.now(UTC) - timedelta(days=3)
        three_days_ago.setattr(eventsourcing.domain, "datetime_now_with_tzinfo", lambda: moment)
        idle, empty, revived = (sessions.create_session(SCOPE) for _ in range(3))
        other_scope = sessions.create_session(elsewhere)
        for number, scope in ((idle.number, SCOPE), (revived.number, SCOPE), (other_scope.number, elsewhere)):
            sessions.handle_event(scope, number, raw_event())
    recent, fresh = sessions.create_session(SCOPE), sessions.create_session(SCOPE)
    sessions.handle_event(SCOPE, recent.number, raw_event())
    catch_up(service)
    sessions.handle_event(SCOPE, revived.number, raw_event())  # now; the read model has not seen it yet

    dry_run = prune(stepped.url, "--older-than", "2", "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr
    assert dry_run.stdout.startswith("would erase 3 sessions whose last event was received before ")
    assert len(sessions.list_sessions(SCOPE, Page())) == 5

    pruned = prune(stepped.url, "--older-than", "2", "--batch-size", "2")

    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("erased 3 sessions whose last event was received before ")
    remaining = {s.number for s in sessions.list_sessions(SCOPE, Page())}
    assert remaining == {revived.number, recent.number, fresh.number}
    assert sessions.list_sessions(elsewhere, Page()) == []
    for gone in (idle, empty):
        with pytest.raises(SessionNotFound):
            sessions.get_session(SCOPE, gone.number)
    assert log_topics(service, idle.number) == ["domain.session:Session.Erased"]
    assert prune(stepped.url, "--older-than", "2").stdout.startswith("erased 0 sessions")


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ((), "the following arguments are required: --older-than"),
        (("--older-than", "0"), "argument --older-than: 0: a number of days above 0"),
        (("--older-than", "-3"), "argument --older-than: -3: a number of days above 0"),
        (("--older-than", "soon"), "argument --older-than: 'soon' is not a number of days"),
        (("--older-than", "1", "--batch-size", "0"), "argument --batch-size: '0': a whole number from 1 to 500"),
    ],
)
def test_prune_refuses_a_bad_age_with_status_2(args: tuple[str, ...], complaint: str, tmp_path: Path) -> None:
    refused = prune(f"sqlite:///{tmp_path / 'never-created.db'}", *args)
    assert refused.returncode == 2
    assert complaint in refused.stderr
    assert not (tmp_path / "never-created.db").exists()
