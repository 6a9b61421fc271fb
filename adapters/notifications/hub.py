"""In-process fan-out of ready notifications to the subscribers connected to this process.

The dispatcher thread publishes; each subscriber lives on an asyncio loop and has a bounded
queue. A subscriber that falls 1,000 notifications behind is told so (it should re-query)
rather than holding memory without bound."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Sequence

from application.notifications import Notification, SubscriptionClosed, SubscriptionLagged
from application.scope import Scope

QUEUE_LIMIT = 1000
_CLOSED = object()
_LAGGED = object()


class HubSubscription:
    def __init__(self, hub: NotificationHub, scope: Scope, loop: asyncio.AbstractEventLoop) -> None:
        self._hub = hub
        self.scope = scope
        self.loop = loop
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
        if not isinstance(item, Notification):
            raise TypeError(f"unexpected item in a subscription queue: {item!r}")
        return item

    def close(self) -> None:
        self._hub.unsubscribe(self)

    def _offer(self, item: object) -> None:
        """Runs on the subscriber's loop."""
        if item is not _CLOSED and self._queue.qsize() >= QUEUE_LIMIT:
            while not self._queue.empty():
                self._queue.get_nowait()
            item = _LAGGED
        self._queue.put_nowait(item)


class NotificationHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[HubSubscription] = set()
        self._closed = False

    def subscribe(self, scope: Scope) -> HubSubscription:
        subscription = HubSubscription(self, scope, asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                subscription._offer(_CLOSED)
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

    @staticmethod
    def _deliver(subscription: HubSubscription, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # its loop has closed: the subscriber is gone
            subscription.loop.call_soon_threadsafe(subscription._offer, item)
