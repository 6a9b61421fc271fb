"""The composition root: wires adapters to ports from configuration (`DATABASE_URL`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from adapters.database import Database, store_errors
from adapters.eventstore.log import SessionLog, open_session_log
from adapters.eventstore.store import EventSourcedSessionStore
from adapters.notifications.dispatcher import FeedNotifier, LocalWakeups, PostgresWakeups, Wakeups
from adapters.notifications.feed import NotificationFeed
from adapters.readmodel.projection import SessionEventsProjection
from adapters.readmodel.views import ReadModelEventViews
from adapters.readmodel.worker import (
    Leadership,
    PostgresLeadership,
    ProjectionWorker,
    SQLiteLeadership,
)
from adapters.settings import StoreSettings
from adapters.tokens import HashedTokenStore
from application.ports import TokenStore
from application.services import SessionService


@dataclass
class Service:
    """The wired service. Its deliberate surface for the HTTP layer: `sessions` (the use cases),
    `tokens`, `notifier` (the `Notifier` port), `check_ready()`, `close_streams()`, `store_kind`
    and `request_threads`; the rest is for commands and tests."""

    settings: StoreSettings
    log: SessionLog
    database: Database
    sessions: SessionService
    tokens: TokenStore
    projection: SessionEventsProjection
    notifier: FeedNotifier
    worker: ProjectionWorker | None = None
    _closed: bool = field(default=False, repr=False)

    @property
    def store_kind(self) -> str:
        """`sqlite` or `postgres`, as reported by `/health`."""
        return self.settings.kind

    @property
    def request_threads(self) -> int:
        """How many blocking requests a serving process runs at once: one per pooled connection."""
        return self.settings.pool_size + self.settings.max_overflow

    def check_ready(self) -> None:
        """Returns once the store answers; raises `StoreUnavailable` if it cannot be reached."""
        self.projection.head()

    def close_streams(self) -> None:
        """Ends every live-notification stream of this process cleanly (before a shutdown)."""
        self.notifier.close_subscriptions()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.notifier.stop()
        if self.worker is not None:
            self.worker.stop()
        self.log.close()


SCHEMA_READY = "SESSION_EVENTS_SCHEMA_READY"
"""Set by `serve` once it has created the schema, so that worker processes never race on DDL."""


def bootstrap(
    settings: StoreSettings | None = None,
    *,
    run_projection: bool = True,
    create_tables: bool | None = True,
) -> Service:
    """Builds the service. `run_projection` starts the background threads (projector and
    notifier) that a serving process needs; commands that only use the store leave it off.
    `create_tables`: True creates the schema (idempotent DDL), False assumes it, None creates it
    only if it is missing."""
    settings = settings or StoreSettings.from_environment()
    with store_errors():
        log = open_session_log(settings, create_tables=bool(create_tables))
    database = Database(log.recorder.datastore)  # type: ignore[attr-defined]
    if create_tables is None:  # only if missing: DDL takes locks that queue behind busy writers
        create_tables = not database.has_table("api_tokens")
        if create_tables:
            with store_errors():
                log.create_tables()
    projection = SessionEventsProjection(log, database)
    tokens = HashedTokenStore(database)
    feed = NotificationFeed(database)
    if create_tables:
        projection.create_tables()
        feed.create_tables()
        tokens.create_tables()
    sessions = SessionService(
        store=EventSourcedSessionStore(log, database),
        views=ReadModelEventViews(projection, database),
    )
    notifier = FeedNotifier(feed, _wakeups(settings, projection))
    service = Service(settings, log, database, sessions, tokens, projection, notifier)
    if run_projection:
        service.worker = ProjectionWorker(projection, _leadership(settings, log))
        service.worker.start()
        notifier.start()
    return service


def _wakeups(settings: StoreSettings, projection: SessionEventsProjection) -> Wakeups:
    if settings.kind == "postgres":
        return PostgresWakeups(settings)
    return LocalWakeups(projection.progress)


def _leadership(settings: StoreSettings, log: SessionLog) -> Leadership:
    if settings.kind == "postgres":
        return PostgresLeadership(settings, channel=log.recorder.channel_name)  # type: ignore[attr-defined]
    news = threading.Event()
    log.on_saved(news.set)
    return SQLiteLeadership(settings.sqlite_path, news)
