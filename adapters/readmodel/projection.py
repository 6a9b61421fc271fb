"""The projection that keeps `session_events` in step with the session log.

Exactly once: each batch of up to `batch_size` log notifications is written together with the
projection's new position in one transaction, and the position only moves from the value the
batch was read at (compare-and-set), so a batch is never applied twice nor skipped, even if two
processes were to project at once. Batching is what makes it fast: one commit per batch, not one
per event (the library's stock runner commits per event)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.database.base import Database, store_errors
from adapters.eventstore.log import SessionLog
from domain.session import Session

logger = logging.getLogger("session_events.projection")

PROJECTION_NAME = "session_events"
REBUILT_FROM = "rebuilt_from"
"""A `feed_horizons` row: the log head when the read model was last reset for a rebuild."""
FEED_CHANNEL = "session_feed"
MAX_CONFLICTS_WITHOUT_PROGRESS = 50


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    behind: int
    updated_at: str | None


class ProjectionConflict(Exception):
    """Another projector moved the position first; the batch was rolled back."""


def tracked_position(database: Database, name: str) -> int:
    rows = database.fetch_all("SELECT position FROM projection_tracking WHERE name = %s", (name,))
    return int(rows[0]["position"]) if rows else 0


class Progress:
    """The position this process last saw the projection reach, and a way to wait for more."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._listeners: list[Callable[[], None]] = []
        self.position = 0

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Calls `listener` each time the projection moves on in this process."""
        self._listeners.append(listener)

    def advanced_to(self, position: int) -> None:
        with self._condition:
            moved = position > self.position
            self.position = max(self.position, position)
            self._condition.notify_all()
        if moved:
            for listener in self._listeners:
                listener()

    def wait(self, timeout: float) -> None:
        with self._condition:
            self._condition.wait(timeout)

    def rewind(self) -> None:
        with self._condition:
            self.position = 0


class SessionEventsProjection:
    def __init__(self, log: SessionLog, database: Database, batch_size: int = 1000) -> None:
        self._log = log
        self._db = database
        self.batch_size = batch_size
        self.progress = Progress()
        self._numbers: dict[UUID, int] = {}
        self._insert = database.statement(
            "INSERT INTO session_events (session_id, sequence, id, event_type, sent_at,"
            " received_at, data, metadata, position) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self._advance = database.statement(
            "UPDATE projection_tracking SET position = %s, updated_at = %s"
            " WHERE name = %s AND position = %s RETURNING position"
        )

    def position(self) -> int:
        position = tracked_position(self._db, PROJECTION_NAME)
        self.progress.advanced_to(position)
        return position

    def head(self) -> int:
        """The position of the last event in the log."""
        with store_errors():
            return int(self._log.recorder.max_notification_id() or 0)

    def process_batch(self) -> int:
        """Projects the next batch; returns how many log notifications it consumed."""
        start = self.position()
        notifications = self._log.recorder.select_notifications(
            start=start, limit=self.batch_size, inclusive_of_start=False
        )
        if not notifications:
            return 0
        recorded: list[tuple[Session.EventRecorded, int]] = []
        for notification in notifications:
            domain_event = self._log.mapper.to_domain_event(notification)
            if isinstance(domain_event, Session.EventRecorded):
                recorded.append((domain_event, notification.id))
            elif isinstance(domain_event, Session.Created):  # the session's `Started` event
                self._numbers[domain_event.originator_id] = getattr(domain_event, "number")  # noqa: B009 (made by @event)
        rows = self._rows(recorded)
        end = notifications[-1].id
        try:
            with self._db.transaction(commit=True) as cursor:
                # Move the position first: a rival projector blocks on this row until we commit,
                # then finds the position moved and gives up, before writing any row.
                cursor.execute(self._advance, (end, self._db.now(), PROJECTION_NAME, start))
                if not cursor.fetchall():
                    raise ProjectionConflict(f"position moved from {start} by another projector")
                if rows:
                    cursor.executemany(self._insert, rows)
                # Delivered on commit: tells every process's notifier that more is readable.
                self._db.announce(cursor, FEED_CHANNEL, str(end))
        except IntegrityError as error:  # a rival wrote these rows first (e.g. a rebuild beside the service)
            raise ProjectionConflict(str(error)) from error
        self.progress.advanced_to(end)
        return len(notifications)

    def catch_up(self, on_progress: Callable[[int], None] | None = None) -> None:
        """Projects until the head of the log, synchronously (rebuilds, tests). Another projector
        (a running service) may do part of the work: a conflict just means carrying on from its
        position. `on_progress` is told each position reached."""
        stuck = 0
        while True:
            before = self.progress.position
            try:
                consumed = self.process_batch()
            except ProjectionConflict:
                # A rival moving ahead is progress; the same conflict again and again is a fault.
                stuck = stuck + 1 if self.progress.position == before else 0
                if stuck >= MAX_CONFLICTS_WITHOUT_PROGRESS:
                    raise
                continue
            if on_progress is not None:
                on_progress(self.progress.position)
            if not consumed:
                return

    def behind(self) -> int:
        """How many log events the projection has still to process."""
        return self._db.count_log_events_after(self.position())

    def status(self) -> ProjectionStatus:
        rows = self._db.fetch_all(
            "SELECT position, updated_at FROM projection_tracking WHERE name = %s", (PROJECTION_NAME,)
        )
        updated = rows[0]["updated_at"] if rows else None
        return ProjectionStatus(
            name=PROJECTION_NAME,
            position=int(rows[0]["position"]) if rows else 0,
            head=self.head(),
            behind=self.behind(),
            updated_at=str(updated) if updated is not None else None,
        )

    def reset(self) -> None:
        """Empties the read model so that it is rebuilt from the start of the log. Remembers
        where the log stood: notifications up to there were sent before, and are not sent again."""
        head = self.head()
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement("UPDATE feed_horizons SET position = %s WHERE name = %s"), (head, REBUILT_FROM)
            )
            # Take the position first: it waits for a projector's batch in flight to commit, so the
            # DELETE that follows (a new statement, a new snapshot) also removes that batch's rows.
            # Deleting first would leave them behind a position of 0, and every projector would
            # then collide with them for ever.
            cursor.execute(
                self._db.statement("UPDATE projection_tracking SET position = 0, updated_at = %s WHERE name = %s"),
                (self._db.now(), PROJECTION_NAME),
            )
            cursor.execute("DELETE FROM session_events")  # not TRUNCATE: readers keep their snapshot
        self.progress.rewind()

    def _rows(self, recorded: Sequence[tuple[Session.EventRecorded, int]]) -> list[tuple[Any, ...]]:
        if len(self._numbers) > 100_000:
            self._numbers.clear()
        unknown = {e.originator_id for e, _ in recorded} - self._numbers.keys()
        if unknown:
            self._numbers.update(self._db.session_numbers_of(unknown))
        db = self._db
        return [
            (
                self._numbers[e.originator_id],
                e.sequence,
                db.uuid(e.event_id),
                e.event_type,
                db.time(e.sent_at),
                db.time(e.timestamp),
                e.data,
                e.metadata,
                position,
            )
            for e, position in recorded
        ]
