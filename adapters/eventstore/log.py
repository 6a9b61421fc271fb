"""The eventsourcing `Application` that persists sessions."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from copy import deepcopy
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import Recording
from eventsourcing.postgres import PostgresRecorder
from eventsourcing.sqlite import SQLiteRecorder
from eventsourcing.utils import Environment, EnvType, get_topic

from adapters.database.url import DatabaseSettings
from adapters.eventstore.recorders import LIBPQ_OPTIONS, SessionLogPostgresFactory, SessionLogSQLiteFactory
from domain.session import Session

logger = logging.getLogger("session_events.log")

SNAPSHOT_INTERVAL = 1000
CACHE_SIZE = 2000


class SessionLog(Application[Any]):
    """Appending must not slow down as a session grows: saved sessions stay in an in-process
    cache (fast-forwarded from the store, so other processes' writes are seen), and a snapshot
    is taken from the in-memory session each time a save crosses a multiple of
    SNAPSHOT_INTERVAL, so a cold load replays at most that many events."""

    name = "SessionLog"
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Session: SNAPSHOT_INTERVAL}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._save_listeners: list[Callable[[], None]] = []

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

    def _notify(self, recordings: list[Recording[Any]]) -> None:
        for listener in self._save_listeners:
            listener()

    def _record(self, processing_event: ProcessingEvent[Any]) -> list[Recording[Any]]:
        recordings = super()._record(processing_event)
        if self.repository.cache is not None:
            for aggregate_id, aggregate in processing_event.aggregates.items():
                # A copy: the caller keeps using its object while others fast-forward the cached one.
                self.repository.cache.put(aggregate_id, deepcopy(aggregate))
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[Any]) -> None:
        """The library rebuilds the aggregate from the store for each multiple of the interval
        a save crosses; the saved aggregate is already in memory, so snapshot that, once."""
        if self.snapshots is None:
            return
        saved_per_aggregate: dict[Any, int] = {}
        for event in processing_event.events:
            saved_per_aggregate[event.originator_id] = saved_per_aggregate.get(event.originator_id, 0) + 1
        for aggregate_id, saved in saved_per_aggregate.items():
            aggregate = processing_event.aggregates.get(aggregate_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if aggregate is None or not interval:
                continue
            if aggregate.version // interval > (aggregate.version - saved) // interval:
                try:
                    self.snapshots.put([Session.Snapshot.take(aggregate)])
                except Exception:  # the save has committed: a missed snapshot only costs a longer load
                    logger.warning(
                        "snapshot of %s at version %s failed", aggregate_id, aggregate.version, exc_info=True
                    )


def event_log_environment(settings: DatabaseSettings) -> dict[str, str]:
    common = {
        "AGGREGATE_CACHE_MAXSIZE": str(CACHE_SIZE),
        "CREATE_TABLE": "n",  # the schema module creates and migrates every table
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
        "POSTGRES_PRE_PING": "y",
        "POSTGRES_LOCK_TIMEOUT": "5",
        LIBPQ_OPTIONS: json.dumps(dict(settings.options)),
    }


def open_session_log(settings: DatabaseSettings) -> SessionLog:
    return SessionLog(env=event_log_environment(settings))
