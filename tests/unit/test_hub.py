"""The in-process hub: each subscriber gets only its scope's notifications, a subscriber that
falls behind is told once and starts afresh, shutdown ends every subscription, and a subscriber
whose event loop has gone never breaks publishing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from adapters.notifications.hub import QUEUE_LIMIT, HubSubscription, NotificationHub
from application.notifications import (
    SESSION_EVENTS,
    Notification,
    SubscriptionClosed,
    SubscriptionLagged,
    SubscriptionRevoked,
)
from application.scope import Scope

MINE = Scope(1, 2)
SAME_ACCOUNT = Scope(1, 3)
OTHER_ACCOUNT = Scope(2, 2)
NOTHING_MORE = 0.05
"""How long to wait for a notification that must not come: everything published before has
already been handed to the subscriber's loop, so a wrong delivery would already be queued."""


def notification(position: int, scope: Scope = MINE) -> Notification:
    return Notification(position, SESSION_EVENTS, 9, scope.account_id, scope.user_id, {"n": position})


async def publish(hub: NotificationHub, notifications: list[Notification]) -> None:
    """From another thread, as the dispatcher does; returns once the deliveries have run."""
    await anyio.to_thread.run_sync(hub.publish, notifications)
    await asyncio.sleep(0)  # the loop runs the deliveries scheduled from the thread


async def positions(subscription: HubSubscription, count: int) -> list[int | None]:
    received = [await subscription.next(timeout=5) for _ in range(count)]
    return [n.position if n is not None else None for n in received]


@pytest.mark.anyio
async def test_each_subscriber_gets_only_its_own_scope() -> None:
    hub = NotificationHub()
    mine, same_account, other_account = (hub.subscribe(s) for s in (MINE, SAME_ACCOUNT, OTHER_ACCOUNT))
    await publish(hub, [notification(1, MINE), notification(2, SAME_ACCOUNT), notification(3, MINE)])
    assert await positions(mine, 2) == [1, 3]
    assert await same_account.next(timeout=5) == notification(2, SAME_ACCOUNT)
    for subscription in (mine, same_account, other_account):
        assert await subscription.next(timeout=NOTHING_MORE) is None


@pytest.mark.anyio
async def test_a_subscriber_may_hold_the_queue_limit_without_lagging() -> None:
    hub = NotificationHub()
    subscription = hub.subscribe(MINE)
    await publish(hub, [notification(p) for p in range(1, QUEUE_LIMIT + 1)])
    assert await positions(subscription, QUEUE_LIMIT) == list(range(1, QUEUE_LIMIT + 1))


@pytest.mark.anyio
async def test_a_lagging_subscriber_is_told_once_and_its_backlog_dropped() -> None:
    hub = NotificationHub()
    slow, other = hub.subscribe(MINE), hub.subscribe(SAME_ACCOUNT)
    await publish(hub, [notification(p) for p in range(1, QUEUE_LIMIT + 2)])
    await publish(hub, [notification(QUEUE_LIMIT + 2), notification(1, SAME_ACCOUNT)])
    with pytest.raises(SubscriptionLagged):
        await slow.next(timeout=5)
    assert await slow.next(timeout=5) == notification(QUEUE_LIMIT + 2)  # the dropped ones never come
    assert await slow.next(timeout=NOTHING_MORE) is None
    assert await other.next(timeout=5) == notification(1, SAME_ACCOUNT)  # others are not affected


@pytest.mark.anyio
async def test_close_ends_every_subscription_even_a_full_one_and_later_ones() -> None:
    hub = NotificationHub()
    idle, full = hub.subscribe(MINE), hub.subscribe(SAME_ACCOUNT)
    await publish(hub, [notification(p, SAME_ACCOUNT) for p in range(1, QUEUE_LIMIT + 1)])
    hub.close()
    await asyncio.sleep(0)
    with pytest.raises(SubscriptionClosed):
        await idle.next(timeout=5)
    assert await positions(full, QUEUE_LIMIT) == list(range(1, QUEUE_LIMIT + 1))  # what it had, then the end
    with pytest.raises(SubscriptionClosed):
        await full.next(timeout=5)
    late = hub.subscribe(MINE)
    with pytest.raises(SubscriptionClosed):
        await late.next(timeout=5)


@pytest.mark.anyio
async def test_a_closed_subscription_receives_nothing_more() -> None:
    hub = NotificationHub()
    left, stays = hub.subscribe(MINE), hub.subscribe(MINE)
    left.close()
    await publish(hub, [notification(1)])
    assert await stays.next(timeout=5) == notification(1)
    assert await left.next(timeout=NOTHING_MORE) is None


def test_publishing_to_a_subscriber_whose_loop_has_closed_does_not_raise() -> None:
    hub = NotificationHub()

    async def subscribe_and_vanish() -> None:
        hub.subscribe(MINE)  # its connection dropped without closing the subscription

    asyncio.run(subscribe_and_vanish())

    async def live_subscriber() -> Notification | None:
        subscription = hub.subscribe(MINE)
        await publish(hub, [notification(1)])
        return await subscription.next(timeout=5)

    assert asyncio.run(live_subscriber()) == notification(1)
    hub.publish([notification(2)])
    hub.close()


@pytest.mark.anyio
async def test_revoking_a_token_ends_its_streams_only_and_refuses_it_new_ones() -> None:
    hub = NotificationHub()
    revoked, same_scope_other_token = hub.subscribe(MINE, token_id=7), hub.subscribe(MINE, token_id=8)
    await publish(hub, [notification(1)])
    await anyio.to_thread.run_sync(hub.close_token, 7)
    await asyncio.sleep(0)
    with pytest.raises(SubscriptionRevoked):  # at once: what was queued is not sent to a revoked token
        await revoked.next(timeout=5)
    assert await same_scope_other_token.next(timeout=5) == notification(1)
    late = hub.subscribe(MINE, token_id=7)  # authenticated just before the revocation arrived
    with pytest.raises(SubscriptionRevoked):
        await late.next(timeout=5)


@pytest.mark.anyio
async def test_streams_of_an_expired_token_end() -> None:
    hub = NotificationHub()
    now = datetime.now(UTC)
    expired = hub.subscribe(MINE, token_id=1, expires_at=now - timedelta(seconds=1))
    later, forever = hub.subscribe(MINE, 2, now + timedelta(hours=1)), hub.subscribe(MINE, 3)
    hub.close_expired(now)
    await asyncio.sleep(0)
    with pytest.raises(SubscriptionRevoked):
        await expired.next(timeout=5)
    assert await later.next(timeout=NOTHING_MORE) is None
    assert await forever.next(timeout=NOTHING_MORE) is None
