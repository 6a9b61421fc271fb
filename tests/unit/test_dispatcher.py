"""The dispatcher's rhythm against a scripted feed: it asks again at once only while the feed
may hold more than it took, and otherwise waits for news (the wakeup is cleared before it asks,
so what becomes ready meanwhile wakes it at once)."""

from __future__ import annotations

import threading
from typing import Any

from adapters.notifications.dispatcher import DISPATCH_BATCH, FeedNotifier
from application.notifications import SESSION_EVENTS, Cursor, Notification


def notifications(start: int, count: int) -> list[Notification]:
    return [Notification(position, SESSION_EVENTS, 1, 1, 1) for position in range(start, start + count)]


class ScriptedFeed:
    """Hands out `batches` in turn, then nothing; writes each question into `steps`."""

    def __init__(self, batches: list[list[Notification]], steps: list[str]) -> None:
        self._batches = batches
        self._steps = steps

    def readable_position(self) -> int:
        return 0

    def rebuilt_from(self) -> int:
        return 0

    def ready_after(self, after: Cursor, limit: int) -> list[Notification]:
        self._steps.append(f"ask after {after.position}")
        return self._batches.pop(0)[:limit] if self._batches else []

    def prune(self, older_than: Any) -> int:
        return 0


class StoppingWakeup:
    """Writes each wait into `steps` and stops the dispatcher at the first one."""

    def __init__(self, steps: list[str]) -> None:
        self._steps = steps
        self.notifier: FeedNotifier | None = None
        self.waited = threading.Event()

    def wait(self, timeout: float) -> None:
        self._steps.append("wait for news")
        assert self.notifier is not None
        self.notifier._stopping.set()
        self.waited.set()


def dispatch(batches: list[list[Notification]]) -> list[str]:
    steps: list[str] = []
    wakeup = StoppingWakeup(steps)
    notifier = FeedNotifier(ScriptedFeed(batches, steps), wakeup, prune=False)  # type: ignore[arg-type]
    wakeup.notifier = notifier
    notifier.start()
    assert wakeup.waited.wait(5)
    notifier.stop()
    return steps


def test_after_taking_fewer_than_a_batch_it_waits_for_news_instead_of_asking_again() -> None:
    assert dispatch([notifications(1, 3)]) == ["ask after 0", "wait for news"]


def test_after_taking_a_full_batch_it_asks_again_at_once() -> None:
    assert dispatch([notifications(1, DISPATCH_BATCH), notifications(DISPATCH_BATCH + 1, 2)]) == [
        "ask after 0",
        f"ask after {DISPATCH_BATCH}",
        "wait for news",
    ]
