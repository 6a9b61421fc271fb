"""The eventsourcing `Application` that persists sessions."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import DataError, IntegrityError
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.sqlite import SQLiteRecorder
from eventsourcing.utils import Environment, EnvType, get_topic

from adapters.database.url import DatabaseSettings
from adapters.eventstore.group_write import GroupWritten, group_rows
from adapters.eventstore.recorders import (
    LIBPQ_OPTIONS,
    SessionLogPostgresFactory,
    SessionLogPostgresRecorder,
    SessionLogSQLiteFactory,
    SessionLogSQLiteRecorder,
)
from adapters.eventstore.transcoder import CompactJSONTranscoder
from application.recording import SessionChanges
from domain.session import Session

logger = logging.getLogger("session_events.log")

SNAPSHOT_INTERVAL = 1000


class SessionLog(Application[Any]):
    """The event store of sessions. Appending must not slow down as a session grows: a snapshot
    is taken from the in-memory session each time a save crosses a multiple of
    SNAPSHOT_INTERVAL, so a cold load replays at most that many events. Sessions are written a
    group at a time (`write_group`), cached by `EventSourcedSessionStore`, not by the library."""

    name = "SessionLog"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Session: SNAPSHOT_INTERVAL}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._save_listeners: list[Callable[[], None]] = []
        self.projects_session_events = True
        """Whether appends write their events into `session_events` themselves when it has
        caught up with the log (ADR 0017). Off, its projector alone does (tests driving it)."""

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Configured only by what it is given: the library would also read the process's
        environment, where `SESSIONLOG_*` or `POSTGRES_*` variables would override our settings."""
        settings = dict(type(self).env)
        if type(self).snapshotting_intervals:
            settings["IS_SNAPSHOTTING_ENABLED"] = "y"
        settings.update(env or {})
        return Environment(name, settings)

    def create_tables(self) -> None:
        """The event store's own tables (see `adapters.database.schema`, migration 1)."""
        for recorder in (self.recorder, self.snapshots.recorder if self.snapshots else None):
            if isinstance(recorder, PostgresRecorder | SQLiteRecorder):
                recorder.create_table()

    def conversation_of(self, session_uuid: UUID) -> str | None:
        """The conversation a stored session is linked to (for the schema's backfills)."""
        session: object = self.repository.get(session_uuid)
        return session.external_conversation_id if isinstance(session, Session) else None

    def on_saved(self, listener: Callable[[], None]) -> None:
        """Calls `listener` after every save made by this process (e.g. to wake a projector)."""
        self._save_listeners.append(listener)

    def write_group(self, changes: Sequence[SessionChanges]) -> GroupWritten:
        """Saves the sessions' pending events (collecting them) in one transaction; see
        `adapters.eventstore.group_write` for what is written and which sessions are left out."""
        rows = group_rows(changes, self.mapper)
        recorder = self.recorder
        if not isinstance(recorder, SessionLogPostgresRecorder | SessionLogSQLiteRecorder):
            raise TypeError(f"the session log cannot write groups with a {type(recorder).__name__}")
        try:
            written = recorder.insert_group(rows, project=self.projects_session_events)
        except (DataError, IntegrityError) as refused:
            # The read model refused a row (never seen: its columns take what validation lets
            # through): the events are recorded all the same, and the projector, which records
            # a failure without losing events, takes it from there.
            logger.warning("session_events refused a group's rows (%s); recording it without them", refused)
            written = recorder.insert_group(rows, project=False)
        if written.saved:
            for listener in self._save_listeners:
                listener()
        return written

    def snapshot_if_due(self, session: Session, saved: int) -> None:
        """Snapshots a session whose save of `saved` events crossed a multiple of the interval
        (from the session in memory: the library would rebuild it from the store)."""
        if self.snapshots is None:
            return
        if session.version // SNAPSHOT_INTERVAL <= (session.version - saved) // SNAPSHOT_INTERVAL:
            return
        try:
            self.snapshots.put([Session.Snapshot.take(session)])
        except Exception:  # the save has committed: a missed snapshot only costs a longer load
            logger.warning("snapshot of %s at version %s failed", session.id, session.version, exc_info=True)


def event_log_environment(settings: DatabaseSettings) -> dict[str, str]:
    common = {
        "CREATE_TABLE": "n",  # the schema module creates and migrates every table
        "TRANSCODER_TOPIC": get_topic(CompactJSONTranscoder),
    }
    if settings.kind == "sqlite":
        return {
            **common,
            "PERSISTENCE_MODULE": get_topic(SessionLogSQLiteFactory),
            "SQLITE_DBNAME": settings.sqlite_path,
            "SQLITE_LOCK_TIMEOUT": "5",
        }
    return {
        **common,
        "PERSISTENCE_MODULE": get_topic(SessionLogPostgresFactory),
        "POSTGRES_DBNAME": settings.dbname,
        "POSTGRES_HOST": settings.host,
        "POSTGRES_PORT": str(settings.port),
        "POSTGRES_USER": settings.user,
        "POSTGRES_PASSWORD": settings.password,
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.max_overflow),
        "POSTGRES_CONNECT_TIMEOUT": str(settings.connect_timeout),
        "POSTGRES_PRE_PING": "n",  # the pool checks a connection without a round trip (recorders.py)
        "POSTGRES_LOCK_TIMEOUT": "5",
        LIBPQ_OPTIONS: json.dumps(dict(settings.options)),
    }


def open_session_log(settings: DatabaseSettings) -> SessionLog:
    return SessionLog(env=event_log_environment(settings))
