"""Every table of the service, in one place, and how the schema moves from release to release.

Tables (PostgreSQL type / SQLite type where they differ):
- the event store's own (`sessionlog_events` on PostgreSQL, `stored_events` on SQLite, and the
  snapshots table): created by the eventsourcing library's recorders, in migration 1;
- `session_numbers`: a sequence (PostgreSQL) or an AUTOINCREMENT table (SQLite) handing out the
  public session numbers;
- `session_directory`: one row per session (number, aggregate id, owner, creation time, and the
  conversation it belongs to once linked), written in the same transaction as the events that
  create or link it; lists a scope's sessions and finds them by conversation;
- `session_event_ids`: the event ids each session has recorded, written with the events; makes
  appends idempotent;
- `session_feed`: the notification outbox, one or two rows per recording call, keyed by the log
  position of the call's last event;
- `feed_horizons`: two positions in the feed's life: `rebuilt_from` (the log head when the read
  model was last reset for a rebuild: notifications up to there were already sent) and
  `pruned_through` (the highest position pruned from the feed);
- `projection_tracking`: each projection's position in the log (compare-and-set);
- `session_events`: the events read model (its rows are a projection of the log);
- `api_tokens`: SHA-256 hashes of API tokens and their scope;
- `schema_migrations`: which of the migrations below a database has had.

How the schema evolves: `MIGRATIONS` is an ordered list; a database records each one it has had
in `schema_migrations`, and `migrate` applies the missing ones in order, each in one transaction
with its record, under a lock so that processes starting together never race. A released
migration is never edited: a change (a new table, a new column, moving rows) is a new migration
at the end of the list, written for both dialects, with a test that runs it on a database as
the previous release left it. Migration 1 uses IF NOT EXISTS throughout, so a database made
before versioning existed (by 0.1.0) is adopted as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from adapters.database.base import Database

logger = logging.getLogger("session_events.schema")


class EventStore(Protocol):
    """What migrations need of the event store: its own tables, and the sessions it holds."""

    def create_tables(self) -> None: ...

    def conversation_of(self, session_uuid: UUID) -> str | None: ...


class Backfill(Protocol):
    def __call__(self, database: Database, cursor: Any, events: EventStore) -> None: ...


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    postgres: Sequence[str] = ()
    sqlite: Sequence[str] = ()
    creates_event_store_tables: bool = False
    """Migration 1 also has the library create the event store's own tables, first."""
    backfill: Backfill | None = None
    """Python run after the statements, in the same transaction (data derived from the log)."""

    def statements(self, database: Database) -> Sequence[str]:
        return self.postgres if database.name == "postgres" else self.sqlite


_BASELINE_POSTGRES = [
    "CREATE SEQUENCE IF NOT EXISTS session_numbers",
    "CREATE TABLE IF NOT EXISTS session_directory ("
    " number bigint PRIMARY KEY, session_uuid uuid NOT NULL UNIQUE,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, created_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS session_directory_scope ON session_directory (account_id, user_id, number DESC)",
    "CREATE TABLE IF NOT EXISTS session_event_ids ("
    " session_id bigint NOT NULL, event_id uuid NOT NULL, PRIMARY KEY (session_id, event_id))",
    "CREATE TABLE IF NOT EXISTS session_feed ("
    " position bigint NOT NULL, kind text NOT NULL, session_id bigint NOT NULL,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, payload text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (position, kind))",
    "CREATE INDEX IF NOT EXISTS session_feed_scope ON session_feed (account_id, user_id, position)",
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
    # `json`, unlike `jsonb`, keeps the exact input text (and can still be queried).
    "CREATE TABLE IF NOT EXISTS session_events ("
    " session_id bigint NOT NULL, sequence bigint NOT NULL, id uuid NOT NULL,"
    " event_type text NOT NULL, sent_at timestamptz NOT NULL, received_at timestamptz NOT NULL,"
    " data json NOT NULL, metadata json, position bigint NOT NULL,"
    " PRIMARY KEY (session_id, sequence))",
    "CREATE INDEX IF NOT EXISTS session_events_by_time ON session_events (session_id, sent_at, sequence)",
    "CREATE INDEX IF NOT EXISTS session_events_by_type_and_time"
    " ON session_events (session_id, event_type, sent_at, sequence)",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_hash text PRIMARY KEY,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, created_at timestamptz NOT NULL)",
    "INSERT INTO projection_tracking (name, position) VALUES ('session_events', 0) ON CONFLICT (name) DO NOTHING",
]

_BASELINE_SQLITE = [
    "CREATE TABLE IF NOT EXISTS session_numbers (number INTEGER PRIMARY KEY AUTOINCREMENT, allocated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS session_directory ("
    " number INTEGER PRIMARY KEY, session_uuid TEXT NOT NULL UNIQUE,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS session_directory_scope ON session_directory (account_id, user_id, number DESC)",
    "CREATE TABLE IF NOT EXISTS session_event_ids ("
    " session_id INTEGER NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (session_id, event_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS session_feed ("
    " position INTEGER NOT NULL, kind TEXT NOT NULL, session_id INTEGER NOT NULL,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, payload TEXT NOT NULL,"
    " created_at TEXT NOT NULL, PRIMARY KEY (position, kind)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS session_feed_scope ON session_feed (account_id, user_id, position)",
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT)",
    "CREATE TABLE IF NOT EXISTS session_events ("
    " session_id INTEGER NOT NULL, sequence INTEGER NOT NULL, id TEXT NOT NULL,"
    " event_type TEXT NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL,"
    " data TEXT NOT NULL, metadata TEXT, position INTEGER NOT NULL,"
    " PRIMARY KEY (session_id, sequence)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS session_events_by_time ON session_events (session_id, sent_at, sequence)",
    "CREATE INDEX IF NOT EXISTS session_events_by_type_and_time"
    " ON session_events (session_id, event_type, sent_at, sequence)",
    "CREATE TABLE IF NOT EXISTS api_tokens (token_hash TEXT PRIMARY KEY,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created_at TEXT NOT NULL)",
    "INSERT INTO projection_tracking (name, position, updated_at)"
    " VALUES ('session_events', 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) ON CONFLICT (name) DO NOTHING",
]

# 0.1.0 kept the feed's two horizons as rows of projection_tracking; they are not projections.
_HORIZONS_OUT_OF_TRACKING = [
    "INSERT INTO feed_horizons (name, position) VALUES"
    " ('rebuilt_from',"
    " COALESCE((SELECT position FROM projection_tracking WHERE name = 'session_events_rebuilt_from'), 0)),"
    " ('pruned_through',"
    " COALESCE((SELECT position FROM projection_tracking WHERE name = 'session_feed_pruned'), 0))",
    "DELETE FROM projection_tracking WHERE name IN ('session_events_rebuilt_from', 'session_feed_pruned')",
]

def _link_directory_to_conversations(database: Database, cursor: Any, events: EventStore) -> None:
    """Each session's conversation as its history decided it (loaded from the log: a linked
    session is found whichever rule linked it). Reads the directory through the migration's own
    cursor: its ALTER TABLE locks the table against every other connection until it commits."""
    update = database.statement("UPDATE session_directory SET external_conversation_id = %s WHERE number = %s")
    cursor.execute("SELECT number, session_uuid FROM session_directory")
    for row in list(cursor.fetchall()):
        conversation_id = events.conversation_of(database.read_uuid(row["session_uuid"]))
        if conversation_id is not None:
            cursor.execute(update, (conversation_id, row["number"]))


MIGRATIONS: Sequence[Migration] = (
    Migration(
        1,
        "baseline: the event store, session directory, event ids, feed, read model, tokens",
        postgres=_BASELINE_POSTGRES,
        sqlite=_BASELINE_SQLITE,
        creates_event_store_tables=True,
    ),
    Migration(
        2,
        "the feed's horizons get a table of their own",
        postgres=[
            "CREATE TABLE feed_horizons (name text PRIMARY KEY, position bigint NOT NULL)",
            *_HORIZONS_OUT_OF_TRACKING,
        ],
        sqlite=[
            "CREATE TABLE feed_horizons (name TEXT PRIMARY KEY, position INTEGER NOT NULL)",
            *_HORIZONS_OUT_OF_TRACKING,
        ],
    ),
    Migration(
        3,
        "session_directory knows each session's conversation (backfilled from the log)",
        postgres=[
            "ALTER TABLE session_directory ADD COLUMN external_conversation_id text",
            "CREATE INDEX session_directory_conversation"
            " ON session_directory (account_id, user_id, external_conversation_id, number DESC)",
        ],
        sqlite=[
            "ALTER TABLE session_directory ADD COLUMN external_conversation_id TEXT",
            "CREATE INDEX session_directory_conversation"
            " ON session_directory (account_id, user_id, external_conversation_id, number DESC)",
        ],
        backfill=_link_directory_to_conversations,
    ),
)
LATEST = MIGRATIONS[-1].version

_VERSIONS_DDL = {
    "postgres": "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    "sqlite": "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)",
}


def current_version(database: Database) -> int:
    """0 for an empty database or one made before versioning."""
    if not database.has_table("schema_migrations"):
        return 0
    rows = database.fetch_all("SELECT max(version) AS version FROM schema_migrations")
    return int(rows[0]["version"] or 0)


def migrate(database: Database, events: EventStore, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Applies the migrations the database has not had, in order; returns their versions. Cheap
    when there is nothing to do (one read, no DDL: DDL takes locks that queue behind writers)."""
    latest = migrations[-1].version
    if current_version(database) >= latest:
        return []
    applied: list[int] = []
    with database.schema_lock():
        with database.transaction(commit=True) as cursor:
            cursor.execute(_VERSIONS_DDL[database.name])
        done = current_version(database)  # again, under the lock: another process may have migrated
        for migration in migrations:
            if migration.version <= done:
                continue
            if migration.creates_event_store_tables:
                events.create_tables()
            with database.transaction(commit=True) as cursor:
                for statement in migration.statements(database):
                    cursor.execute(statement)
                if migration.backfill is not None:
                    migration.backfill(database, cursor, events)
                _record(database, cursor, migration)
            logger.info("schema migrated to version %s: %s", migration.version, migration.description)
            applied.append(migration.version)
    return applied


def _record(database: Database, cursor: Any, migration: Migration) -> None:
    cursor.execute(
        database.statement("INSERT INTO schema_migrations (version, description, applied_at) VALUES (%s, %s, %s)"),
        (migration.version, migration.description, database.now()),
    )
