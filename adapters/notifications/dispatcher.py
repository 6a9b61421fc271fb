"""Moves ready notifications from the feed to this process's subscribers.

Every process runs one dispatcher thread. It remembers the last notification it delivered and
asks the feed for what is ready after it whenever it is woken, and at least once a second. It is
woken by `Wakeup` (`adapters.database.coordination`): on PostgreSQL by the process's listener,
on the `session_feed` channel that the projector NOTIFYs in the transaction making events
readable (from whichever process projected), and after the listener reconnects; on SQLite by
the projection's progress in this process, polling for the others'."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from adapters.database.coordination import Wakeup
from adapters.notifications.feed import NotificationFeed
from adapters.notifications.hub import HubSubscription, NotificationHub
from application.notifications import Cursor, Notification
from application.scope import Scope

logger = logging.getLogger("session_events.notifications")

SAFETY_POLL = 1.0
RETENTION = timedelta(days=1)
PRUNE_EVERY = 600.0
DISPATCH_BATCH = 1000
"""Notifications taken from the feed at a time."""


class FeedNotifier:
    """The `Notifier`: this process's subscribers, fed from the feed by a dispatcher thread."""

    def __init__(self, feed: NotificationFeed, news: Wakeup, *, prune: bool = True) -> None:
        self._feed = feed
        self._news = news
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

    def close_subscriptions(self) -> None:
        """Ends every subscription of this process: its streams close cleanly."""
        self.hub.close()

    def subscribe(
        self, scope: Scope, token_id: int | None = None, expires_at: datetime | None = None
    ) -> HubSubscription:
        return self.hub.subscribe(scope, token_id, expires_at)

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
                ready = self._feed.ready_after(self._cursor, DISPATCH_BATCH)
                if ready:
                    self.hub.publish(ready)
                    self._cursor = ready[-1].cursor
                    if len(ready) == DISPATCH_BATCH:
                        continue  # there may be more ready already
                # Drained: whatever becomes ready from now on wakes it (the wakeup was cleared
                # before the query), so asking again at once would only find nothing.
                if self._prune and time.monotonic() - last_prune > PRUNE_EVERY:
                    last_prune = time.monotonic()
                    self._feed.prune(RETENTION)
                self._news.wait(SAFETY_POLL)
            except Exception:
                logger.exception("notification dispatch failed; retrying")
                self._stopping.wait(SAFETY_POLL)
