"""`notifications()`, the generator behind `/api/stream` and `/api/ws`, driven by a fake
`Notifier`: connected first, then what was missed, then live notifications; a resync when the
missed ones cannot be told; never a notification at or before what the client has seen; and the
subscription always closed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from typing import cast

import pytest

from application.notifications import (
    SESSION_EVENTS,
    SESSION_UPDATED,
    Cursor,
    Notification,
    Subscription,
    SubscriptionClosed,
    SubscriptionLagged,
)
from application.scope import Scope
from entrypoints.http.stream import REPLAY_LIMIT, Connected, KeepAlive, Resync, StreamItem, notifications

pytestmark = pytest.mark.anyio

CALLER = Scope(1, 2)
NOW = Cursor(100, 2)
"""Where the fake feed stands: after everything it holds."""

Script = Sequence[Notification | type[Exception] | None]


def events(position: int) -> Notification:
    return Notification(position, SESSION_EVENTS, 9, 1, 2, {"event_count": position})


def updated(position: int) -> Notification:
    return Notification(position, SESSION_UPDATED, 9, 1, 2, {"status": "complete"})


class ScriptedSubscription:
    """Hands out the scripted items in order (None: a timeout, an exception class: raised),
    then ends as a shutdown would."""

    def __init__(self, script: Script) -> None:
        self._script = list(script)
        self._ended = False
        self.closed = False

    async def next(self, timeout: float) -> Notification | None:
        assert timeout > 0
        assert not self._ended, "asked for more after the subscription was closed by the service"
        item = self._script.pop(0) if self._script else SubscriptionClosed
        if isinstance(item, type):
            self._ended = item is SubscriptionClosed
            raise item
        return item

    def close(self) -> None:
        self.closed = True


class FakeNotifier:
    def __init__(self, live: Script = (), backlog: list[Notification] | None = None) -> None:
        self.subscription = ScriptedSubscription(live)
        self.backlog = backlog
        self.calls: list[tuple[object, ...]] = []

    def subscribe(self, scope: Scope, token_id: int | None = None, expires_at: datetime | None = None) -> Subscription:
        self.calls.append(("subscribe", scope))
        return self.subscription

    def replay(self, scope: Scope, after: Cursor, limit: int) -> list[Notification] | None:
        self.calls.append(("replay", scope, after, limit))
        return self.backlog

    def current(self) -> Cursor:
        self.calls.append(("current",))
        return NOW


def shown(item: StreamItem) -> object:
    if isinstance(item, Notification):
        return item.event_id
    if isinstance(item, Resync):
        return ("resync", item.cursor, item.event_id)
    if isinstance(item, Connected):
        return "connected"
    assert isinstance(item, KeepAlive)
    return "keep-alive"


def opened(notifier: FakeNotifier, last_seen: Cursor | None) -> AsyncGenerator[StreamItem, None]:
    """The stream as a client holds it: a generator it may close early."""
    return cast(AsyncGenerator[StreamItem, None], notifications(notifier, CALLER, last_seen))


async def stream(notifier: FakeNotifier, last_seen: Cursor | None = None) -> list[object]:
    items = [shown(item) async for item in notifications(notifier, CALLER, last_seen)]
    assert notifier.subscription.closed
    return items


RESYNC = ("resync", NOW, "100.2")


async def test_connected_comes_first_and_the_subscription_before_the_replay() -> None:
    notifier = FakeNotifier(backlog=[events(6)])
    stream_items = opened(notifier, Cursor(5, 0))
    assert shown(await anext(stream_items)) == "connected"
    assert notifier.calls == [("subscribe", CALLER)]
    assert shown(await anext(stream_items)) == "6"
    assert notifier.calls == [("subscribe", CALLER), ("replay", CALLER, Cursor(5, 0), REPLAY_LIMIT + 1)]
    await stream_items.aclose()


async def test_without_a_cursor_live_notifications_are_sent_and_nothing_replayed() -> None:
    notifier = FakeNotifier(live=[events(3), updated(3), events(4)])
    assert await stream(notifier) == ["connected", "3", "3.1", "4"]
    assert notifier.calls == [("subscribe", CALLER)]


async def test_what_was_missed_comes_first_then_live_ones_without_repeats() -> None:
    """The subscription starts before the replay, so live ones may repeat the replayed ones."""
    notifier = FakeNotifier(backlog=[updated(5), events(6), events(7)], live=[events(6), events(7), events(8)])
    assert await stream(notifier, Cursor(5, 0)) == ["connected", "5.1", "6", "7", "8"]


async def test_nothing_at_or_before_the_cursor_is_ever_sent() -> None:
    notifier = FakeNotifier(backlog=[], live=[events(4), events(5), updated(5), events(3), updated(5), events(6)])
    assert await stream(notifier, Cursor(5, 0)) == ["connected", "5.1", "6"]


async def test_a_resume_that_cannot_be_replayed_gets_a_resync_at_the_current_position() -> None:
    notifier = FakeNotifier(backlog=None, live=[events(99), updated(100), events(101)])
    assert await stream(notifier, Cursor(5, 0)) == ["connected", RESYNC, "101"]


async def test_a_backlog_longer_than_the_replay_limit_gets_a_resync_instead() -> None:
    too_long = FakeNotifier(backlog=[events(p) for p in range(1, REPLAY_LIMIT + 2)])
    assert await stream(too_long, Cursor(0, 0)) == ["connected", RESYNC]
    longest = FakeNotifier(backlog=[events(p) for p in range(1, REPLAY_LIMIT + 1)])
    assert await stream(longest, Cursor(0, 0)) == ["connected", *(str(p) for p in range(1, REPLAY_LIMIT + 1))]


async def test_a_lagging_subscription_gets_a_resync_and_carries_on_after_it() -> None:
    notifier = FakeNotifier(live=[events(1), SubscriptionLagged, events(50), events(101)])
    assert await stream(notifier) == ["connected", "1", RESYNC, "101"]


async def test_a_quiet_moment_is_a_keep_alive() -> None:
    notifier = FakeNotifier(live=[None, events(1), None])
    assert await stream(notifier) == ["connected", "keep-alive", "1", "keep-alive"]


async def test_the_stream_ends_when_the_service_closes_it() -> None:
    notifier = FakeNotifier(live=[events(1), SubscriptionClosed, events(2)])
    assert await stream(notifier) == ["connected", "1"]


async def test_the_subscription_is_closed_when_the_client_goes() -> None:
    notifier = FakeNotifier(live=[events(1), events(2)])
    stream_items = opened(notifier, None)
    assert [shown(await anext(stream_items)) for _ in range(2)] == ["connected", "1"]
    assert not notifier.subscription.closed
    await stream_items.aclose()
    assert notifier.subscription.closed


async def test_the_subscription_is_closed_when_the_replay_fails() -> None:
    class Unreachable(Exception):
        pass

    class FailingNotifier(FakeNotifier):
        def replay(self, scope: Scope, after: Cursor, limit: int) -> list[Notification] | None:
            raise Unreachable

    notifier = FailingNotifier()
    with pytest.raises(Unreachable):
        await stream(notifier, Cursor(1, 0))
    assert notifier.subscription.closed
