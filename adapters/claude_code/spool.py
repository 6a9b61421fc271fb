"""The local spool: a SQLite file where hooks append events and the sender takes them from.

Many hook processes write at once (Claude Code runs hooks in parallel), so every write is one short
`BEGIN IMMEDIATE` transaction in WAL mode with a generous busy timeout: writers queue, readers
never wait. A hook's events, and the session's `conversation_started` on its first sight, are
stored in one transaction and stamped with `sent_at` inside it, strictly increasing per Claude
Code session, so that the service's order (by `sent_at`) is the order of the spool.

An event leaves `events` when the service has stored it, or moves to `rejected` (with the status
and the reason) when the service refused it for good; `requeue_rejected` puts those back in their
original places. The spool also remembers which service session stands for each Claude Code
session, per service URL."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Sequence

from adapters.claude_code.encoding import encode_data
from adapters.claude_code.mapping import MappedEvent

SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 10.0

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        conversation_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        data TEXT NOT NULL,
        size INTEGER NOT NULL,
        spooled_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS events_by_conversation ON events (conversation_id, seq)",
    """CREATE TABLE IF NOT EXISTS rejected (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        data TEXT NOT NULL,
        size INTEGER NOT NULL,
        spooled_at REAL NOT NULL,
        status INTEGER,
        reason TEXT NOT NULL,
        rejected_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS conversations (
        conversation_id TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_sent_us INTEGER NOT NULL,
        cwd TEXT)""",
    """CREATE TABLE IF NOT EXISTS remote_sessions (
        base_url TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        session_id INTEGER NOT NULL,
        opened INTEGER NOT NULL,
        PRIMARY KEY (base_url, conversation_id))""",
    "CREATE TABLE IF NOT EXISTS sender_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)

class SpooledEvent:
    """An event waiting in the spool, its `data` still the JSON text the hook wrote."""

    __slots__ = ("conversation_id", "data", "event_type", "id", "sent_at", "seq", "size")

    def __init__(self, row: Sequence[object]) -> None:
        seq, event_id, conversation, event_type, sent_at, data, size = row[:7]
        self.seq = int(seq)  # type: ignore[call-overload]
        self.id = str(event_id)
        self.conversation_id = str(conversation)
        self.event_type = str(event_type)
        self.sent_at = str(sent_at)
        self.data = str(data)
        self.size = int(size)  # type: ignore[call-overload]


class RejectedEvent(SpooledEvent):
    __slots__ = ("reason", "status")

    def __init__(self, row: Sequence[object]) -> None:
        super().__init__(row)
        self.status = None if row[8] is None else int(row[8])  # type: ignore[call-overload]
        self.reason = str(row[9])


def format_sent_at(microseconds: int) -> str:
    seconds, fraction = divmod(microseconds, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


class Spool:
    """One connection to the spool file; cheap to open, so every process opens its own."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        try:
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._create_schema()
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Hooks never pay for a checkpoint; the sender runs them (see `tidy`). The limit is a
            # safety net for a spool that nothing sends from.
            self._db.execute("PRAGMA wal_autocheckpoint=10000")
        except BaseException:
            self._db.close()
            raise

    def _create_schema(self) -> None:
        _until_not_busy(self._db, "PRAGMA auto_vacuum=INCREMENTAL")  # takes effect only on an empty file
        _until_not_busy(self._db, "PRAGMA journal_mode=WAL")
        with self._transaction():
            if self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # --- written by hooks -------------------------------------------------------------------

    def append(self, conversation_id: str, events: Sequence[MappedEvent], first: MappedEvent, cwd: str | None) -> int:
        """Stores a hook's events; `first` (the session's `conversation_started`) goes in front
        when this spool has never seen the session. Returns how many events were stored (an
        event whose id is already waiting is not stored twice)."""
        encoded = [(event.id, event.event_type.value, *encode_data(event.data)) for event in events]
        opening = (first.id, first.event_type.value, *encode_data(first.data))
        with self._transaction():
            now = time.time()
            known = self._db.execute(
                "SELECT last_sent_us FROM conversations WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
            rows = encoded if known is not None else [opening, *encoded]
            last = known[0] if known is not None else 0
            stored = 0
            for event_id, event_type, data, size in rows:
                # Strictly increasing per session even if the clock steps back, so the service's
                # order by sent_at is the spool's order.
                last = max(time.time_ns() // 1000, last + 1)
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO events (id, conversation_id, event_type, sent_at, data, size, spooled_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event_id, conversation_id, event_type, format_sent_at(last), data, size, now),
                )
                stored += cursor.rowcount
            self._db.execute(
                "INSERT INTO conversations (conversation_id, first_seen, last_sent_us, cwd) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id) DO UPDATE SET last_sent_us = excluded.last_sent_us",
                (conversation_id, now, last, cwd),
            )
        return stored

    # --- read and emptied by the sender ---------------------------------------------------------

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    def rejected_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])

    def next_batch(self, max_events: int, max_bytes: int) -> list[SpooledEvent]:
        """The oldest waiting events of the session that has the oldest waiting event, in spool
        order, within the limits (at least one event)."""
        head = self._db.execute("SELECT conversation_id FROM events ORDER BY seq LIMIT 1").fetchone()
        if head is None:
            return []
        batch: list[SpooledEvent] = []
        total = 0
        for row in self._db.execute(
            "SELECT seq, id, conversation_id, event_type, sent_at, data, size, spooled_at"
            " FROM events WHERE conversation_id = ? ORDER BY seq LIMIT ?",
            (head[0], max_events),
        ):
            event = SpooledEvent(row)
            if batch and total + event.size > max_bytes:
                break
            batch.append(event)
            total += event.size
        return batch

    def delete(self, events: Iterable[SpooledEvent]) -> None:
        seqs = [(event.seq,) for event in events]
        with self._transaction():
            self._db.executemany("DELETE FROM events WHERE seq = ?", seqs)

    def park(self, events: Iterable[SpooledEvent], status: int | None, reason: str) -> int:
        """Moves events the service refused for good to `rejected`, out of the way of the rest."""
        now = time.time()
        moved = 0
        with self._transaction():
            for event in events:
                moved += self._db.execute(
                    "INSERT INTO rejected (seq, id, conversation_id, event_type, sent_at, data, size,"
                    " spooled_at, status, reason, rejected_at)"
                    " SELECT seq, id, conversation_id, event_type, sent_at, data, size, spooled_at, ?, ?, ?"
                    " FROM events WHERE seq = ?",
                    (status, reason, now, event.seq),
                ).rowcount
                self._db.execute("DELETE FROM events WHERE seq = ?", (event.seq,))
        return moved

    def park_conversation(self, conversation_id: str, status: int | None, reason: str) -> int:
        with self._transaction():
            moved = self._db.execute(
                "INSERT INTO rejected"
                " (seq, id, conversation_id, event_type, sent_at, data, size, spooled_at, status, reason, rejected_at)"
                " SELECT seq, id, conversation_id, event_type, sent_at, data, size, spooled_at, ?, ?, ?"
                " FROM events WHERE conversation_id = ?",
                (status, reason, time.time(), conversation_id),
            ).rowcount
            self._db.execute("DELETE FROM events WHERE conversation_id = ?", (conversation_id,))
        return moved

    def rejected(self, limit: int = 20) -> list[RejectedEvent]:
        return [
            RejectedEvent(row)
            for row in self._db.execute(
                "SELECT seq, id, conversation_id, event_type, sent_at, data, size, spooled_at, status, reason"
                " FROM rejected ORDER BY seq LIMIT ?",
                (limit,),
            )
        ]

    def requeue_rejected(self) -> int:
        """Puts rejected events back where they were in the queue (after fixing a token, say)."""
        with self._transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO events (seq, id, conversation_id, event_type, sent_at, data, size, spooled_at)"
                " SELECT seq, id, conversation_id, event_type, sent_at, data, size, spooled_at FROM rejected"
            )
            self._db.execute("DELETE FROM rejected")
            return cursor.rowcount

    def drop_rejected(self) -> int:
        with self._transaction():
            return self._db.execute("DELETE FROM rejected").rowcount

    def conversation_cwd(self, conversation_id: str) -> str | None:
        row = self._db.execute("SELECT cwd FROM conversations WHERE conversation_id = ?", (conversation_id,)).fetchone()
        return None if row is None else row[0]

    def remote_session(self, base_url: str, conversation_id: str) -> tuple[int, bool] | None:
        """The service session standing for a Claude Code session, and whether it has been sent
        its first batch (a session created here must get `conversation_started` first)."""
        row = self._db.execute(
            "SELECT session_id, opened FROM remote_sessions WHERE base_url = ? AND conversation_id = ?",
            (base_url, conversation_id),
        ).fetchone()
        return None if row is None else (int(row[0]), bool(row[1]))

    def remember_session(self, base_url: str, conversation_id: str, session_id: int, *, opened: bool) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO remote_sessions (base_url, conversation_id, session_id, opened)"
                " VALUES (?, ?, ?, ?)",
                (base_url, conversation_id, session_id, int(opened)),
            )

    def mark_opened(self, base_url: str, conversation_id: str) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE remote_sessions SET opened = 1 WHERE base_url = ? AND conversation_id = ?",
                (base_url, conversation_id),
            )

    def forget_session(self, base_url: str, conversation_id: str) -> None:
        with self._transaction():
            self._db.execute(
                "DELETE FROM remote_sessions WHERE base_url = ? AND conversation_id = ?", (base_url, conversation_id)
            )

    def set_state(self, key: str, value: str | None) -> None:
        with self._transaction():
            if value is None:
                self._db.execute("DELETE FROM sender_state WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO sender_state (key, value) VALUES (?, ?)", (key, value))

    def state(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM sender_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def tidy(self, *, final: bool = False) -> None:
        """Copies the WAL back into the file (hooks leave that to the sender) without ever making
        a hook wait; `final` (a sender about to exit) also truncates the WAL and, when the spool
        is empty, gives the space large payloads took back to the file system."""
        try:
            if not final:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                return
            if self.pending_count() == 0:
                self._db.execute("PRAGMA incremental_vacuum")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # busy: the next round will do it


def _busy(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def _until_not_busy(db: sqlite3.Connection, statement: str, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
    """Runs `statement`, again while SQLite answers busy. The busy timeout covers most waits, but
    SQLite also answers busy at once in a few cases (a WAL file being recovered, a journal-mode
    switch racing another connection); a hook must wait those out too, not lose its event."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            db.execute(statement)
            return
        except sqlite3.OperationalError as error:
            if not _busy(error) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`: takes the write lock up front, so two writers queue on the
    busy timeout instead of failing half-way with a lock upgrade error."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        _until_not_busy(self._db, "BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            self._db.execute("ROLLBACK")
