"""The schema's one home: a database as the previous release (0.1.0) left it is migrated in
place, keeping its data; migrating is idempotent; the library sees only our settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from adapters.database import schema
from adapters.database.base import Database
from adapters.database.url import DatabaseSettings
from adapters.eventstore.log import open_session_log
from adapters.eventstore.store import EventSourcedSessionStore
from application.group_commit import GroupCommit
from application.queries import EventQuery, Page
from application.scope import Scope
from application.services import SessionService
from entrypoints.bootstrap import _database, bootstrap
from tests.conftest import STORES, require_postgres, settings_for, store_url
from tests.factories import raw_event


def _as_release_0_1_0_left_it(url: str) -> None:
    """0.1.0 created the baseline tables without `schema_migrations`, and kept the feed's two
    horizons as rows of `projection_tracking`."""
    settings = DatabaseSettings.from_url(url)
    log = open_session_log(settings)
    log.create_tables()
    log.close()
    baseline = schema.MIGRATIONS[0]
    old_rows = (
        "INSERT INTO projection_tracking (name, position, updated_at) VALUES"
        " ('session_events_rebuilt_from', 7, '2026-01-01'), ('session_feed_pruned', 5, '2026-01-01')"
    )
    if settings.kind == "postgres":
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in [*baseline.postgres, old_rows]:
                conn.execute(statement)
    else:
        import sqlite3

        with sqlite3.connect(settings.sqlite_path) as conn:
            for statement in [*baseline.sqlite, old_rows]:
                conn.execute(statement)


@pytest.mark.parametrize("kind", STORES)
def test_a_0_1_0_database_is_migrated_in_place(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        _as_release_0_1_0_left_it(url)
        service = bootstrap(settings_for(url))
        try:
            database = service.database
            assert schema.current_version(database) == schema.LATEST
            horizons = {row["name"]: row["position"] for row in database.fetch_all("SELECT * FROM feed_horizons")}
            assert horizons == {"rebuilt_from": 7, "pruned_through": 5}
            tracked = [row["name"] for row in database.fetch_all("SELECT name FROM projection_tracking")]
            assert sorted(tracked) == ["session_events", "session_stats"]
            scope = Scope(1, 2)
            session = service.sessions.create_session(scope)
            service.sessions.handle_event(scope, session.number, raw_event())
            assert len(service.sessions.get_events(scope, session.number, EventQuery())) == 1
            assert schema.migrate(database, service.log) == []  # nothing left to do
        finally:
            service.close()


@pytest.mark.parametrize("kind", STORES)
def test_an_empty_database_gets_every_migration_once(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        first = bootstrap(settings_for(url), run_projection=False)
        second = bootstrap(settings_for(url), run_projection=False)
        try:
            rows = first.database.fetch_all("SELECT version FROM schema_migrations ORDER BY version")
            assert [row["version"] for row in rows] == [m.version for m in schema.MIGRATIONS]
        finally:
            first.close()
            second.close()


def test_the_event_store_library_never_reads_the_process_environment(tmp_path: Path) -> None:
    """The library would let SESSIONLOG_* (or bare POSTGRES_*, SQLITE_*) variables override the
    settings it is given; here they point elsewhere and must change nothing."""
    code = (
        "from entrypoints.bootstrap import bootstrap\n"
        "from tests.conftest import settings_for\n"
        f"s = bootstrap(settings_for('sqlite:///{tmp_path}/real.db'), run_projection=False)\n"
        "print(s.log.env.get('SQLITE_DBNAME'))\n"
        "s.close()\n"
    )
    decoy = str(tmp_path / "decoy.db")
    env = {**os.environ, "SESSIONLOG_SQLITE_DBNAME": decoy, "SQLITE_DBNAME": decoy, "PERSISTENCE_MODULE": "x"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert result.stdout.strip() == f"{tmp_path}/real.db"
    assert not Path(decoy).exists()


def test_libpq_options_in_the_url_reach_every_connection(tmp_path: Path) -> None:
    require_postgres()
    with store_url("postgres", tmp_path) as url:
        service = bootstrap(settings_for(f"{url}?application_name=se-options-check"), run_projection=False)
        try:
            names = service.database.fetch_all("SELECT current_setting('application_name') AS name")
            assert names[0]["name"] == "se-options-check"
        finally:
            service.close()


@pytest.mark.parametrize("kind", STORES)
def test_migration_3_finds_the_conversation_of_sessions_recorded_before_it(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        scope = Scope(5, 6)
        linked, unlinked = service.sessions.create_session(scope), service.sessions.create_session(scope)
        started = raw_event(event_type="conversation_started", data={"conversation_id": "conv-old"})
        service.sessions.handle_event(scope, linked.number, started)
        service.sessions.handle_event(scope, unlinked.number, raw_event(event_type="conversation_started"))
        with service.database.transaction(commit=True) as cursor:  # back to the schema before migration 3
            for statement in (
                "DROP INDEX session_directory_conversation",
                "ALTER TABLE session_directory DROP COLUMN external_conversation_id",
                "DELETE FROM schema_migrations WHERE version >= 3",
            ):
                cursor.execute(statement)
        # Migration 3 again, as a database left at version 2 would get it (the later ones are in place).
        assert schema.migrate(service.database, service.log, schema.MIGRATIONS[:3]) == [3]
        with service.database.transaction(commit=True) as cursor:
            for later in schema.MIGRATIONS[3:]:
                cursor.execute(
                    service.database.statement(
                        "INSERT INTO schema_migrations (version, description, applied_at)"
                        " VALUES (%s, 'already applied', %s)"
                    ),
                    (later.version, service.database.now()),
                )
        service.close()

        migrated = bootstrap(settings_for(url), run_projection=False)
        try:
            found = migrated.sessions.list_sessions(scope, Page(), conversation_id="conv-old")
            assert [s.number for s in found] == [linked.number]
            assert migrated.sessions.list_sessions(Scope(5, 7), Page(), conversation_id="conv-old") == []
        finally:
            migrated.close()


@pytest.mark.parametrize("kind", STORES)
def test_migration_3_skips_a_conversation_id_no_text_column_can_hold(kind: str, tmp_path: Path) -> None:
    """0.1.0 linked any conversation id, a NUL included: the backfill leaves such a session
    unlinked rather than failing the migration (PostgreSQL refuses NUL in text)."""

    class Events:
        def __init__(self, ids: dict[object, str]) -> None:
            self.ids = ids

        def create_tables(self) -> None: ...

        def conversation_of(self, session_uuid: object) -> str | None:
            return self.ids.get(session_uuid)

    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        try:
            scope = Scope(8, 9)
            odd, fine = service.sessions.create_session(scope), service.sessions.create_session(scope)
            events = Events({odd.id: "a\x00b", fine.id: "conv-fine"})
            with service.database.transaction(commit=True) as cursor:
                schema.MIGRATIONS[2].backfill(service.database, cursor, events)  # type: ignore[misc]
            assert service.sessions.list_sessions(scope, Page(), conversation_id="conv-fine")[0].number == fine.number
            rows = service.database.fetch_all(
                "SELECT external_conversation_id FROM session_directory WHERE number = %s", (odd.number,)
            )
            assert rows[0]["external_conversation_id"] is None
        finally:
            service.close()


@pytest.mark.parametrize("kind", STORES)
def test_migration_6_on_a_database_as_migration_5_left_it(kind: str, tmp_path: Path) -> None:
    """Sessions and notifications recorded before it are indexed by session and can be erased,
    and appends to them go on."""
    with store_url(kind, tmp_path) as url:
        settings = settings_for(url)
        log = open_session_log(settings.database)
        database = _database(settings, log)
        assert schema.migrate(database, log, schema.MIGRATIONS[:5]) == [1, 2, 3, 4, 5]  # as release 5 left it
        scope = Scope(61, 62)
        old_store = EventSourcedSessionStore(log, database)
        old_sessions = SessionService(old_store, None, None, GroupCommit(old_store))  # type: ignore[arg-type]
        erased, kept = old_sessions.create_session(scope), old_sessions.create_session(scope)
        old_sessions.close()
        with database.transaction(commit=True) as cursor:  # notifications that release recorded
            for position, session in ((1, erased), (2, kept)):
                cursor.execute(
                    database.statement(
                        "INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload,"
                        " created_at) VALUES (%s, 'session_events', %s, %s, %s, '{}', %s)"
                    ),
                    (position, session.number, scope.account_id, scope.user_id, database.now()),
                )
        log.close()

        service = bootstrap(settings, run_projection=False)
        try:
            assert schema.current_version(service.database) == schema.LATEST
            service.sessions.handle_event(scope, kept.number, raw_event())
            service.sessions.handle_event(scope, erased.number, raw_event())
            service.erasure.erase_session(scope, erased.number)
            feed = service.database.fetch_all("SELECT session_id, kind FROM session_feed ORDER BY position, kind")
            assert [(row["session_id"], row["kind"]) for row in feed] == [
                (kept.number, "session_events"),
                (kept.number, "session_events"),
                (erased.number, "session_erased"),
            ]
            assert "session_feed_session" in _plan(service.database, "DELETE FROM session_feed WHERE session_id = 1")
        finally:
            service.close()


ERASURE_STATEMENTS = [
    "DELETE FROM session_feed WHERE session_id = 1",
    "DELETE FROM session_event_ids WHERE session_id = 1",
    "DELETE FROM session_directory WHERE number = 1",
    "DELETE FROM session_events WHERE session_id = 1",
    "DELETE FROM session_stats WHERE session_id = 1",
    "DELETE FROM session_stats_open_calls WHERE session_id = 1",
    "DELETE FROM {events} WHERE originator_id = {id}",
    "DELETE FROM {snapshots} WHERE originator_id = {id}",
    "SELECT received_at FROM session_events WHERE session_id = 1 ORDER BY sequence DESC LIMIT 1",
]


@pytest.mark.parametrize("kind", STORES)
def test_erasing_a_session_reads_its_rows_by_index_never_a_whole_table(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        try:
            db = service.database
            names = {
                "events": service.log.recorder.events_table_name,  # type: ignore[attr-defined]
                "snapshots": service.log.snapshots.recorder.events_table_name,  # type: ignore[union-attr]
                "id": f"'{db.log_id(UUID(int=1))}'",
            }
            for statement in ERASURE_STATEMENTS:
                plan = _plan(db, statement.format(**names))
                assert "Seq Scan" not in plan and "SCAN " not in plan, (statement, plan)
        finally:
            service.close()


def _plan(database: Database, statement: str) -> str:
    """The query plan, with sequential scans ruled out wherever an index would do (PostgreSQL
    prefers a scan of a table this small, which says nothing of a large one)."""
    with database.transaction(commit=False) as cursor:
        if database.name == "postgres":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {statement}")
            return "\n".join(str(next(iter(row.values()))) for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {statement}")
        return "\n".join(str(row["detail"]) for row in cursor.fetchall())
