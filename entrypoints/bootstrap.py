"""The composition root: wires adapters to ports from `Settings`. The only place that knows
which store it is on: it picks each dialect's adapters here, once."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from adapters.database import schema
from adapters.database.base import Database, store_errors
from adapters.database.coordination import FileLeadership, PostgresListener, local_wakeup, polling_wakeup
from adapters.database.postgres import Postgres, reachability_problem
from adapters.database.sqlite import SQLite
from adapters.erasure import LogErasure
from adapters.eventstore.export import LogExport
from adapters.eventstore.log import SessionLog, open_session_log
from adapters.eventstore.recorders import SessionLogPostgresRecorder, SessionLogSQLiteRecorder
from adapters.eventstore.store import EventSourcedSessionStore
from adapters.notifications.dispatcher import FeedNotifier
from adapters.notifications.feed import NotificationFeed
from adapters.rate_limit import DatabaseRateLimiter
from adapters.readmodel.projection import FEED_CHANNEL, REBUILDING, ProjectionStatus, Projector, ReadModel
from adapters.readmodel.rebuild import Rebuild, Rebuilt, is_rebuilding
from adapters.readmodel.session_events import NAME as SESSION_EVENTS
from adapters.readmodel.session_events import SessionEvents
from adapters.readmodel.session_stats import SessionStatsModel
from adapters.readmodel.views import ReadModelEventViews, ReadModelStatsViews, ReadYourWrites
from adapters.readmodel.worker import ProjectionWorker
from adapters.token_revocations import POSTGRES_POLL_SECONDS, SQLITE_POLL_SECONDS, RevocationWatcher
from adapters.tokens import TOKENS_CHANNEL, HashedTokenStore
from application.erasure import SessionErasure
from application.errors import StoreUnavailable
from application.group_commit import GroupCommit
from application.ports import RateLimiter, TokenStore
from application.services import SessionService
from entrypoints.settings import Settings

PROJECTION_LEADER_LOCK = 0x5E55_10E5
"""PostgreSQL advisory lock held by the process that projects `session_events` ("session events")."""
READ_MODELS: tuple[ReadModel, ...] = (SessionEvents(), SessionStatsModel())
"""Every read model the service keeps. A new projection is added here (docs/adding-a-projection.md)."""


class Background(Protocol):
    """A thread a serving process runs: the listener, a projection's worker, the revocation watcher."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Service:
    """A running service. Its deliberate surface for the HTTP layer: `sessions` (the use cases),
    `erasure` (erasing sessions), `tokens`, `limiter` (None when requests are not limited),
    `notifier` (the `Notifier` port), `check_ready()`, `close_streams()`, `store_kind`,
    `request_threads` and `keepalive_seconds`; commands also drive the `projection` and
    `erasure`; `log`, `database` and `store` are there for tests and the benchmark, which look
    beneath the ports."""

    settings: Settings
    sessions: SessionService
    erasure: SessionErasure
    tokens: TokenStore
    notifier: FeedNotifier
    projectors: dict[str, Projector]
    log: SessionLog = field(repr=False)
    database: Database = field(repr=False)
    store: EventSourcedSessionStore = field(repr=False)
    limiter: RateLimiter | None = None
    _background: list[Background] = field(
        default_factory=list, repr=False
    )
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

    @property
    def projection(self) -> Projector:
        """The `session_events` projector, whose progress makes events (and notifications) readable."""
        return self.projectors[SESSION_EVENTS]

    def rebuild(self, name: str, on_progress: Callable[[int], None] | None = None, batch_size: int = 1000) -> Rebuilt:
        """Rebuilds a read model beside the live one and swaps it in (see `adapters.readmodel.rebuild`)."""
        projector = self.projectors[name]
        return Rebuild(projector.model, self.log, self.database, live=projector, batch_size=batch_size).run(
            on_progress
        )

    def projection_statuses(self) -> list[ProjectionStatus]:
        statuses = []
        for projector in self.projectors.values():
            status = projector.status()
            if is_rebuilding(self.database, projector.name):
                status = replace(status, state=REBUILDING)
            statuses.append(status)
        return statuses

    def pool_usage(self) -> dict[str, int] | None:
        """This process's connection pool (PostgreSQL), for the metrics; None on SQLite."""
        return self.database.pool_usage()

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
        self.sessions.close()
        self.notifier.stop()
        for part in self._background:
            part.stop()
        self.log.close()


def bootstrap(settings: Settings | None = None, *, run_projection: bool = True) -> Service:
    """Builds the service, migrating the schema first if the database needs it (one read when it
    does not). `run_projection` starts the background threads a serving process needs (a worker
    per projection, the notifier, the revocation watcher and, on PostgreSQL, the listener they
    rely on); commands that only use the store leave it off."""
    settings = settings or Settings.from_environment()
    problem = _store_problem(settings)
    if problem is not None:
        raise StoreUnavailable(f"{settings.database.describe()}: {problem}")
    with store_errors():
        log = open_session_log(settings.database)
    database = _database(settings, log)
    schema.migrate(database, log)

    projectors = {
        model.name: Projector(model, log, database, announce=model.name == SESSION_EVENTS)
        for model in READ_MODELS
    }
    background: list[Background] = []
    workers: list[Background] = []
    if settings.database.kind == "postgres":
        assert isinstance(database, Postgres)  # noqa: S101 (chosen by the same settings)
        listener = PostgresListener(settings.database, [database.log_channel, FEED_CHANNEL, TOKENS_CHANNEL])
        news_of_feed = listener.wakeup(FEED_CHANNEL)
        news_of_tokens, token_poll = listener.wakeup(TOKENS_CHANNEL), POSTGRES_POLL_SECONDS
        for name, projector in projectors.items():
            leadership = listener.leadership(_leader_lock_key(name))
            news = listener.wakeup(database.log_channel)
            workers.append(ProjectionWorker(projector, leadership, news, settle=_settle(name)))
        background.append(listener)
    else:
        feed_news = threading.Event()
        projectors[SESSION_EVENTS].progress.on_advance(feed_news.set)
        log.on_saved(feed_news.set)  # an append may have projected its events itself
        news_of_feed = local_wakeup(feed_news)
        news_of_tokens, token_poll = polling_wakeup(), SQLITE_POLL_SECONDS
        for name, projector in projectors.items():
            log_news = threading.Event()
            log.on_saved(log_news.set)
            leadership = FileLeadership(settings.database.sqlite_path, name)
            workers.append(ProjectionWorker(projector, leadership, local_wakeup(log_news), settle=_settle(name)))

    reads = ReadYourWrites(projectors, database)
    notifier = FeedNotifier(NotificationFeed(database), news_of_feed)
    tokens = HashedTokenStore(database)
    workers.append(
        RevocationWatcher(tokens, news_of_tokens, token_poll, notifier.hub.close_token, notifier.hub.close_expired)
    )
    store = EventSourcedSessionStore(log, database)
    service = Service(
        settings=settings,
        sessions=SessionService(
            store=store,
            views=ReadModelEventViews(reads, database),
            stats=ReadModelStatsViews(reads, database),
            recorder=GroupCommit(store),
        ),
        erasure=SessionErasure(LogErasure(log, database, READ_MODELS)),
        tokens=tokens,
        notifier=notifier,
        projectors=projectors,
        log=log,
        database=database,
        store=store,
        limiter=None if settings.rate_limit is None else DatabaseRateLimiter(database, settings.rate_limit),
        _background=background,
    )
    if run_projection:
        background[:0] = workers  # stopped before the listener they rely on
        for part in reversed(background):
            part.start()
        notifier.start()
    return service


SETTLE_SECONDS = {SESSION_EVENTS: 0.05}
"""How long each projection's worker lets news of appends gather before projecting (see
`adapters.readmodel.worker`). Appends project `session_events` themselves whenever it has
caught up with the log (ADR 0017), so its worker is only a fallback; the others project every
append, a batch at a time."""
DEFAULT_SETTLE_SECONDS = 0.02


def _settle(projection: str) -> float:
    return SETTLE_SECONDS.get(projection, DEFAULT_SETTLE_SECONDS)


def _leader_lock_key(projection: str) -> int:
    """PostgreSQL advisory lock held by the process that projects `projection`. The first
    projection keeps the key 0.1.0 used, so that an old and a new process never both lead it."""
    if projection == SESSION_EVENTS:
        return PROJECTION_LEADER_LOCK
    return PROJECTION_LEADER_LOCK + zlib.crc32(projection.encode())


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
