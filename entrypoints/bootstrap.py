"""The composition root: wires adapters to ports from `Settings`. The only place that knows
which store it is on: it picks each dialect's adapters here, once."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from adapters.database import schema
from adapters.database.base import Database, store_errors
from adapters.database.coordination import FileLeadership, Leadership, PostgresListener, local_wakeup
from adapters.database.postgres import Postgres, reachability_problem
from adapters.database.sqlite import SQLite
from adapters.eventstore.export import LogExport
from adapters.eventstore.log import SessionLog, open_session_log
from adapters.eventstore.recorders import SessionLogPostgresRecorder, SessionLogSQLiteRecorder
from adapters.eventstore.store import EventSourcedSessionStore
from adapters.notifications.dispatcher import FeedNotifier
from adapters.notifications.feed import NotificationFeed
from adapters.readmodel.projection import FEED_CHANNEL, SessionEventsProjection
from adapters.readmodel.views import ReadModelEventViews
from adapters.readmodel.worker import ProjectionWorker
from adapters.tokens import HashedTokenStore
from application.errors import StoreUnavailable
from application.ports import TokenStore
from application.services import SessionService
from entrypoints.settings import Settings

PROJECTION_LEADER_LOCK = 0x5E55_10E5
"""PostgreSQL advisory lock held by the process that projects ("session events")."""


@dataclass
class Service:
    """A running service. Its deliberate surface for the HTTP layer: `sessions` (the use cases),
    `tokens`, `notifier` (the `Notifier` port), `check_ready()`, `close_streams()`, `store_kind`,
    `request_threads` and `keepalive_seconds`; commands also drive the `projection`; `log` and
    `database` are there for tests and the benchmark, which look beneath the ports."""

    settings: Settings
    sessions: SessionService
    tokens: TokenStore
    notifier: FeedNotifier
    projection: SessionEventsProjection
    log: SessionLog = field(repr=False)
    database: Database = field(repr=False)
    _background: list[ProjectionWorker | PostgresListener] = field(default_factory=list, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def store_kind(self) -> str:
        """`sqlite` or `postgres`, as reported by `/health`."""
        return self.settings.database.kind

    @property
    def request_threads(self) -> int:
        """How many blocking requests a serving process runs at once: one per pooled connection."""
        return self.settings.request_threads

    @property
    def keepalive_seconds(self) -> float:
        """Seconds between keep-alive comments on a live stream."""
        return self.settings.keepalive_seconds

    def describe_store(self) -> str:
        """Where the data is (no password), for what a command tells its user."""
        return self.settings.database.describe()

    def check_ready(self) -> None:
        """Returns once the store answers; raises `StoreUnavailable` if it cannot be reached."""
        self.projection.head()

    def log_export(self) -> LogExport:
        """The event log itself, read for an export (the system of record, not a read model)."""
        return LogExport(self.log, self.database)

    def close_streams(self) -> None:
        """Ends every live-notification stream of this process cleanly (before a shutdown)."""
        self.notifier.close_subscriptions()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.notifier.stop()
        for part in self._background:
            part.stop()
        self.log.close()


def bootstrap(settings: Settings | None = None, *, run_projection: bool = True) -> Service:
    """Builds the service, migrating the schema first if the database needs it (one read when it
    does not). `run_projection` starts the background threads a serving process needs (the
    projector, the notifier and their listener); commands that only use the store leave it off."""
    settings = settings or Settings.from_environment()
    problem = _store_problem(settings)
    if problem is not None:
        raise StoreUnavailable(f"{settings.database.describe()}: {problem}")
    with store_errors():
        log = open_session_log(settings.database)
    database = _database(settings, log)
    schema.migrate(database, log)

    projection = SessionEventsProjection(log, database)
    feed_news = threading.Event()
    log_news = threading.Event()
    background: list[ProjectionWorker | PostgresListener] = []
    leadership: Leadership
    if settings.database.kind == "postgres":
        assert isinstance(database, Postgres)  # noqa: S101 (chosen by the same settings)
        log_channel = database.log_channel
        listener = PostgresListener(settings.database, [log_channel, FEED_CHANNEL], PROJECTION_LEADER_LOCK)
        news_of_log, news_of_feed = listener.wakeup(log_channel), listener.wakeup(FEED_CHANNEL)
        leadership = listener.leadership()
        background.append(listener)
    else:
        log.on_saved(log_news.set)
        projection.progress.on_advance(feed_news.set)
        news_of_log, news_of_feed = local_wakeup(log_news), local_wakeup(feed_news)
        leadership = FileLeadership(settings.database.sqlite_path)

    notifier = FeedNotifier(NotificationFeed(database), news_of_feed)
    service = Service(
        settings=settings,
        sessions=SessionService(
            store=EventSourcedSessionStore(log, database),
            views=ReadModelEventViews(projection, database),
        ),
        tokens=HashedTokenStore(database),
        notifier=notifier,
        projection=projection,
        log=log,
        database=database,
        _background=background,
    )
    if run_projection:
        worker = ProjectionWorker(projection, leadership, news_of_log)
        background.insert(0, worker)  # stopped before the listener it relies on
        for part in reversed(background):
            part.start()
        notifier.start()
    return service


def _store_problem(settings: Settings) -> str | None:
    """Why the store cannot be opened, said plainly, before the library hides it in a timeout."""
    if settings.database.kind == "postgres":
        return reachability_problem(settings.database)
    folder = Path(settings.database.sqlite_path).parent
    if settings.database.sqlite_path != ":memory:" and not folder.is_dir():
        return f"the folder {folder} does not exist"
    return None


def _database(settings: Settings, log: SessionLog) -> Database:
    recorder = log.recorder
    if settings.database.kind == "postgres":
        assert isinstance(recorder, SessionLogPostgresRecorder)  # noqa: S101 (chosen by the same settings)
        return Postgres(recorder.datastore, recorder.events_table_name, recorder.channel_name)
    assert isinstance(recorder, SessionLogSQLiteRecorder)  # noqa: S101 (chosen by the same settings)
    return SQLite(recorder.datastore, recorder.events_table_name)
