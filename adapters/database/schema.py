"""Every table of the service, in one place, and how the schema moves from release to release.

Tables (PostgreSQL type / SQLite type where they differ):
- the event store's own (`sessionlog_events` on PostgreSQL, `stored_events` on SQLite, and the
  snapshots table): created by the eventsourcing library's recorders, in migration 1; an erased
  session's rows are deleted, and a tombstone (`Session.Erased`, no client data) is appended in
  their place (ADR 0013);
- `session_numbers`: a sequence (PostgreSQL) or an AUTOINCREMENT table (SQLite) handing out the
  public session numbers;
- `session_directory`: one row per session (number, aggregate id, owner, creation time, and the
  conversation it belongs to once linked), written in the same transaction as the events that
  create or link it; lists a scope's sessions and finds them by conversation. Erasing a session
  deletes its row, and an append to a session without one is refused, under the log's lock
  (the group statement in `adapters.eventstore.recorders`);
- `session_event_ids`: the event ids each session has recorded, written with the events; makes
  appends idempotent;
- `session_feed`: the notification outbox, one or two rows per recording call, keyed by the log
  position of the call's last event (and one per erasure, at its tombstone's); indexed by session,
  so that an erasure deletes a session's rows without scanning the feed;
- `feed_horizons`: two positions in the feed's life: `rebuilt_from` (the log head when 0.1.0 last
  rebuilt the read model in place: notifications up to there were already sent; rebuilds are
  blue/green since and never write it) and
  `pruned_through` (the highest position pruned from the feed);
- `projection_tracking`: each projection's position in the log (compare-and-set), its state
  (`live` or `failed`, with the error and the position of the event that failed), and the
  position of a rebuild under way (a row named `<projection>__r<hex>`);
- `session_events`: the events read model (its rows are a projection of the log);
- `session_stats`, `session_stats_open_calls`: the stats read model (per session counts, and the
  tool calls still waiting for their result);
- `api_tokens`: SHA-256 hashes of API tokens, their public id, name and scope, when each was
  created, last used (recorded at most once a minute per process), expires and was revoked;
  rows are never deleted, so that a revoked token stays revoked and listed;
- `rate_limit_windows`: requests per token per minute (`window_start` in minutes since the
  epoch), counted by every process with one upsert per request; old windows are pruned;
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
        # 0.1.0 linked any id; one holding a NUL cannot be stored in a text column (nor asked for).
        if conversation_id is not None and "\x00" not in conversation_id:
            cursor.execute(update, (conversation_id, row["number"]))


# Migration 5: tokens get a public id (for `tokens revoke ID`), a name, an expiry, a revocation
# and a last use. SQLite cannot add an AUTOINCREMENT column, so its table is rebuilt, keeping
# the tokens (oldest first); PostgreSQL numbers the existing rows as it adds the column.
_TOKEN_LIFECYCLE_POSTGRES = [
    "ALTER TABLE api_tokens ADD COLUMN id bigint GENERATED BY DEFAULT AS IDENTITY",
    "ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_id UNIQUE (id)",
    "ALTER TABLE api_tokens ADD COLUMN name text",
    "ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz",
    "ALTER TABLE api_tokens ADD COLUMN revoked_at timestamptz",
    "ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz",
    "CREATE INDEX api_tokens_account ON api_tokens (account_id, id)",
    "CREATE INDEX api_tokens_revoked ON api_tokens (id) WHERE revoked_at IS NOT NULL",
    "CREATE TABLE rate_limit_windows (token_id bigint NOT NULL, window_start bigint NOT NULL,"
    " requests bigint NOT NULL, PRIMARY KEY (token_id, window_start))",
]
_TOKEN_LIFECYCLE_SQLITE = [
    "CREATE TABLE api_tokens_v5 (id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL UNIQUE,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created_at TEXT NOT NULL,"
    " name TEXT, expires_at TEXT, revoked_at TEXT, last_used_at TEXT)",
    "INSERT INTO api_tokens_v5 (token_hash, account_id, user_id, created_at)"
    " SELECT token_hash, account_id, user_id, created_at FROM api_tokens ORDER BY created_at, rowid",
    "DROP TABLE api_tokens",
    "ALTER TABLE api_tokens_v5 RENAME TO api_tokens",
    "CREATE INDEX api_tokens_account ON api_tokens (account_id, id)",
    "CREATE INDEX api_tokens_revoked ON api_tokens (id) WHERE revoked_at IS NOT NULL",
    "CREATE TABLE rate_limit_windows (token_id INTEGER NOT NULL, window_start INTEGER NOT NULL,"
    " requests INTEGER NOT NULL, PRIMARY KEY (token_id, window_start)) WITHOUT ROWID",
]

# Migration 6: erasure deletes a session's notifications without scanning the feed.
_ERASURE = ["CREATE INDEX session_feed_session ON session_feed (session_id)"]

# The tables of each projection, as templates: a rebuild creates them beside the live ones under
# other names (`{session_events}` becomes `session_events__r1a2b3c`), then swaps them in.
# Index names follow their table's name, so that the two generations never collide.
PROJECTION_TABLES: dict[str, dict[str, Sequence[str]]] = {
    "session_events": {
        "postgres": [
            "CREATE TABLE {session_events} ("
            " session_id bigint NOT NULL, sequence bigint NOT NULL, id uuid NOT NULL,"
            " event_type text NOT NULL, sent_at timestamptz NOT NULL, received_at timestamptz NOT NULL,"
            " data json NOT NULL, metadata json, position bigint NOT NULL,"
            " PRIMARY KEY (session_id, sequence))",
            "CREATE INDEX {session_events}_by_time ON {session_events} (session_id, sent_at, sequence)",
            "CREATE INDEX {session_events}_by_type_and_time"
            " ON {session_events} (session_id, event_type, sent_at, sequence)",
        ],
        "sqlite": [
            "CREATE TABLE {session_events} ("
            " session_id INTEGER NOT NULL, sequence INTEGER NOT NULL, id TEXT NOT NULL,"
            " event_type TEXT NOT NULL, sent_at TEXT NOT NULL, received_at TEXT NOT NULL,"
            " data TEXT NOT NULL, metadata TEXT, position INTEGER NOT NULL,"
            " PRIMARY KEY (session_id, sequence)) WITHOUT ROWID",
            "CREATE INDEX {session_events}_by_time ON {session_events} (session_id, sent_at, sequence)",
            "CREATE INDEX {session_events}_by_type_and_time"
            " ON {session_events} (session_id, event_type, sent_at, sequence)",
        ],
    },
    "session_stats": {
        "postgres": [
            "CREATE TABLE {session_stats} ("
            " session_id bigint PRIMARY KEY, event_count bigint NOT NULL,"
            " first_sent_at timestamptz, last_sent_at timestamptz,"
            " by_type text NOT NULL, errors bigint NOT NULL, tools text NOT NULL)",
            "CREATE TABLE {session_stats_open_calls} ("
            " session_id bigint NOT NULL, tool_use_id text NOT NULL, tool_name text NOT NULL,"
            " sent_at timestamptz NOT NULL, PRIMARY KEY (session_id, tool_use_id))",
        ],
        "sqlite": [
            "CREATE TABLE {session_stats} ("
            " session_id INTEGER PRIMARY KEY, event_count INTEGER NOT NULL,"
            " first_sent_at TEXT, last_sent_at TEXT,"
            " by_type TEXT NOT NULL, errors INTEGER NOT NULL, tools TEXT NOT NULL)",
            "CREATE TABLE {session_stats_open_calls} ("
            " session_id INTEGER NOT NULL, tool_use_id TEXT NOT NULL, tool_name TEXT NOT NULL,"
            " sent_at TEXT NOT NULL, PRIMARY KEY (session_id, tool_use_id)) WITHOUT ROWID",
        ],
    },
}


def projection_tables(database: Database, projection: str, names: dict[str, str]) -> list[str]:
    """The DDL of a projection's tables, under the given names (`{"session_events": "..."}`)."""
    return [template.format(**names) for template in PROJECTION_TABLES[projection][database.name]]


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
    Migration(
        4,
        "projections have a state (live or failed, with the error); the session_stats read model",
        postgres=[
            "ALTER TABLE projection_tracking ADD COLUMN state text NOT NULL DEFAULT 'live'",
            "ALTER TABLE projection_tracking ADD COLUMN error text",
            "ALTER TABLE projection_tracking ADD COLUMN failed_position bigint",
            *[
                t.format(session_stats="session_stats", session_stats_open_calls="session_stats_open_calls")
                for t in PROJECTION_TABLES["session_stats"]["postgres"]
            ],
            "INSERT INTO projection_tracking (name, position) VALUES ('session_stats', 0)",
        ],
        sqlite=[
            "ALTER TABLE projection_tracking ADD COLUMN state TEXT NOT NULL DEFAULT 'live'",
            "ALTER TABLE projection_tracking ADD COLUMN error TEXT",
            "ALTER TABLE projection_tracking ADD COLUMN failed_position INTEGER",
            *[
                t.format(session_stats="session_stats", session_stats_open_calls="session_stats_open_calls")
                for t in PROJECTION_TABLES["session_stats"]["sqlite"]
            ],
            "INSERT INTO projection_tracking (name, position, updated_at)"
            " VALUES ('session_stats', 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        ],
    ),
    Migration(
        5,
        "token lifecycle (id, name, expiry, revocation, last use) and per-token rate limit windows",
        postgres=_TOKEN_LIFECYCLE_POSTGRES,
        sqlite=_TOKEN_LIFECYCLE_SQLITE,
    ),
    Migration(
        6,
        "erasure: the feed is indexed by session",
        postgres=_ERASURE,
        sqlite=_ERASURE,
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
