"""Moves ready notifications from the feed to this process's subscribers.

Every process runs one dispatcher thread. It remembers the last notification it delivered and
asks the feed for what is ready after it whenever it is woken, and at least once a second. On
PostgreSQL it is woken by LISTEN on `session_feed` (the projector NOTIFYs it in the transaction
that makes events readable, so the wake-up arrives on commit, from whichever process projected).
If the listening connection dies (`pg_terminate_backend`, a server restart) the dispatcher
reconnects with backoff and catches up from its position: nothing is lost, only delayed. On
SQLite it is woken by the projection's progress in this process, and polls for the others'."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import timedelta
from typing import Any, Protocol

import psycopg

from adapters.notifications.feed import NotificationFeed
from adapters.notifications.hub import HubSubscription, NotificationHub
from adapters.readmodel.projection import FEED_CHANNEL, Progress
from adapters.settings import StoreSettings
from application.notifications import Cursor, Notification
from application.scope import Scope

logger = logging.getLogger("session_events.notifications")

SAFETY_POLL = 1.0
SQLITE_POLL = 0.2
RETENTION = timedelta(days=1)
PRUNE_EVERY = 600.0


class Wakeups(Protocol):
    def wait(self, timeout: float) -> None: ...
    def close(self) -> None: ...


class PostgresWakeups:
    """LISTEN on a dedicated connection that reconnects by itself."""

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        self._conn: psycopg.Connection[Any] | None = None
        self._backoff = 0.1

    def wait(self, timeout: float) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._connect()
                return  # (re)connected: catch up at once
            assert self._conn is not None
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
            self._backoff = 0.1
        except psycopg.Error as error:
            logger.warning("notification listener lost its connection (%s); reconnecting", error)
            self.close()
            time.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 2.0)

    def _connect(self) -> None:
        self._conn = self._settings.dedicated_connection("session-events listener")
        self._conn.execute(f"LISTEN {FEED_CHANNEL}")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class LocalWakeups:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def wait(self, timeout: float) -> None:
        self._progress.wait(min(timeout, SQLITE_POLL))

    def close(self) -> None:
        pass


class FeedNotifier:
    """The `Notifier`: this process's subscribers, fed from the feed by a dispatcher thread."""

    def __init__(self, feed: NotificationFeed, wakeups: Wakeups, *, prune: bool = True) -> None:
        self._feed = feed
        self._wakeups = wakeups
        self._prune = prune
        self.hub = NotificationHub()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-events-notifier", daemon=True)
        self._cursor: Cursor | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.close_subscriptions()
        if self._thread.ident is not None:
            self._thread.join(5)
        self._wakeups.close()

    def close_subscriptions(self) -> None:
        """Ends every subscription of this process: its streams close cleanly."""
        self.hub.close()

    def subscribe(self, scope: Scope) -> HubSubscription:
        return self.hub.subscribe(scope)

    def replay(self, scope: Scope, after: Cursor, limit: int) -> list[Notification] | None:
        return self._feed.replay(scope, after, limit)

    def current(self) -> Cursor:
        return Cursor(self._feed.readable_position())

    def _run(self) -> None:
        last_prune = time.monotonic()
        while not self._stopping.is_set():
            try:
                if self._cursor is None:
                    # From what is readable now; but never from before a rebuild's starting point:
                    # those notifications were sent when first readable, and must not be again.
                    self._cursor = Cursor(max(self._feed.readable_position(), self._feed.rebuilt_from()))
                ready = self._feed.ready_after(self._cursor)
                if ready:
                    self.hub.publish(ready)
                    self._cursor = ready[-1].cursor
                    continue
                if self._prune and time.monotonic() - last_prune > PRUNE_EVERY:
                    last_prune = time.monotonic()
                    self._feed.prune(RETENTION)
                self._wakeups.wait(SAFETY_POLL)
            except Exception:
                logger.exception("notification dispatch failed; retrying")
                self._stopping.wait(SAFETY_POLL)
