"""DDL of the read model. `data` and `metadata` keep the client's JSON text unchanged
(PostgreSQL `json`, unlike `jsonb`, stores the exact input text, and can still be queried)."""

POSTGRES_DDL = [
    "CREATE TABLE IF NOT EXISTS projection_tracking ("
    " name text PRIMARY KEY, position bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS session_events ("
    " session_id bigint NOT NULL, sequence bigint NOT NULL, id uuid NOT NULL,"
    " event_type text NOT NULL, sent_at timestamptz NOT NULL, received_at timestamptz NOT NULL,"
    " data json NOT NULL, metadata json, position bigint NOT NULL,"
    " PRIMARY KEY (session_id, sequence))",
    "CREATE INDEX IF NOT EXISTS session_events_by_time ON session_events (session_id, sent_at, sequence)",
    "CREATE INDEX IF NOT EXISTS session_events_by_type_and_time"
    " ON session_events (session_id, event_type, sent_at, sequence)",
]

SQLITE_DDL = [
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
]
