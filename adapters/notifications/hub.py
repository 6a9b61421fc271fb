"""In-process fan-out of ready notifications to the subscribers connected to this process.

The dispatcher thread publishes; each subscriber lives on an asyncio loop and has a bounded
queue. A subscriber that falls 1,000 notifications behind is told so (it should re-query)
rather than holding memory without bound."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime

from application.notifications import Notification, SubscriptionClosed, SubscriptionLagged, SubscriptionRevoked
from application.scope import Scope

QUEUE_LIMIT = 1000
_CLOSED = object()
_LAGGED = object()
_REVOKED = object()


class HubSubscription:
    def __init__(
        self,
        hub: NotificationHub,
        scope: Scope,
        loop: asyncio.AbstractEventLoop,
        token_id: int | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        self._hub = hub
        self.scope = scope
        self.loop = loop
        self.token_id = token_id
        self.expires_at = expires_at
        self._queue: asyncio.Queue[object] = asyncio.Queue(QUEUE_LIMIT + 1)

    async def next(self, timeout: float) -> Notification | None:
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if item is _CLOSED:
            raise SubscriptionClosed
        if item is _LAGGED:
            raise SubscriptionLagged
        if item is _REVOKED:
            raise SubscriptionRevoked
        if not isinstance(item, Notification):
            raise TypeError(f"unexpected item in a subscription queue: {item!r}")
        return item

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def _offer(self, item: object) -> None:
        """Runs on the subscriber's loop."""
        if item is _REVOKED:  # at once: a revoked token is sent nothing more
            while not self._queue.empty():
                self._queue.get_nowait()
        elif item is not _CLOSED and self._queue.qsize() >= QUEUE_LIMIT:
            while not self._queue.empty():
                self._queue.get_nowait()
            item = _LAGGED
        self._queue.put_nowait(item)


class NotificationHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[HubSubscription] = set()
        self._closed = False
        self._revoked_tokens: set[int] = set()

    def subscribe(
        self, scope: Scope, token_id: int | None = None, expires_at: datetime | None = None
    ) -> HubSubscription:
        """`token_id` and `expires_at` (of the token the stream was opened with) let the stream be
        ended when that token is revoked or expires."""
        subscription = HubSubscription(self, scope, asyncio.get_running_loop(), token_id, expires_at)
        with self._lock:
            if self._closed:
                subscription._offer(_CLOSED)
            elif token_id is not None and token_id in self._revoked_tokens:
                subscription._offer(_REVOKED)  # revoked between authentication and subscription
            else:
                self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: HubSubscription) -> None:
        with self._lock:
            self._subscribers.discard(subscription)

    def publish(self, notifications: Sequence[Notification]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            for notification in notifications:
                if notification.visible_to(subscription.scope):
                    self._deliver(subscription, notification)

    def close(self) -> None:
        """Ends every subscription (service shutdown): streams close cleanly."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for subscription in subscribers:
            self._deliver(subscription, _CLOSED)

    def close_token(self, token_id: int) -> None:
        """Ends the streams opened with this token, now revoked, and refuses it new ones."""
        with self._lock:
            self._revoked_tokens.add(token_id)
            ended = [s for s in self._subscribers if s.token_id == token_id]
            self._subscribers.difference_update(ended)
        for subscription in ended:
            self._deliver(subscription, _REVOKED)

    def close_expired(self, now: datetime) -> None:
        """Ends the streams whose token has expired."""
        with self._lock:
            ended = [s for s in self._subscribers if s.expires_at is not None and s.expires_at <= now]
            self._subscribers.difference_update(ended)
        for subscription in ended:
            self._deliver(subscription, _REVOKED)

    @staticmethod
    def _deliver(subscription: HubSubscription, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # its loop has closed: the subscriber is gone
            subscription.loop.call_soon_threadsafe(subscription._offer, item)
