"""What every projection shares, so that a read model is only its tables and a function from a
batch of recorded events to rows (a `ReadModel`; see docs/adding-a-projection.md).

A `Projector` keeps one read model in step with the session log:
- exactly once: each batch of up to `batch_size` log events is written together with the
  projection's new position in one transaction, and the position only moves from the value the
  batch was read at (compare-and-set): a batch is never applied twice nor skipped, even if two
  processes were to project at once;
- batched: one commit per batch, not one per event, and the log read a batch at a time by
  `LogReader` (`log_reader.py`), which decodes the common event without the library's generic
  mapper;
- seen when it fails: if the read model raises on an event, the events before it are kept, the
  projection's state becomes `failed` with that event's position and the error, and it stops
  there (never skipping it) until it is retried (a process start, or a rebuild);
- the same machinery builds a new generation of the tables beside the live one for a rebuild
  (`tables` maps each table to the name it is written under; see `rebuild.py`);
- erasure-proof (ADR 0013): a session's tombstone (`Session.Erased`) makes the read model delete
  the session's rows, and a batch read before a session was erased never writes its events
  after: they are dropped unless the session still has its directory row, checked once the
  batch holds its tracking row, which an erasure locks for its whole transaction."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from adapters.database.base import UNREACHABLE, Database, store_errors
from adapters.database.channels import FEED_CHANNEL
from adapters.eventstore.log import SessionLog
from adapters.readmodel.log_reader import LogReader
from application.errors import StoreUnavailable
from domain.session import Session

logger = logging.getLogger("session_events.projection")

MAX_CONFLICTS_WITHOUT_PROGRESS = 50
LIVE, FAILED, REBUILDING = "live", "failed", "rebuilding"


@dataclass(frozen=True)
class LogEvent:
    """One event of the session log, as a read model sees it: its position in the log, the
    public number of its session, and the domain event: `Started`, `EventRecorded`, or an event
    class added later, which a read model that does not know it leaves alone (`recorded` is None)."""

    position: int
    session_number: int
    event: Any

    @property
    def recorded(self) -> Session.EventRecorded | None:
        return self.event if isinstance(self.event, Session.EventRecorded) else None

    @property
    def erased(self) -> bool:
        """The session's tombstone: it was erased here, and nothing of it may remain."""
        return isinstance(self.event, Session.Erased)


class ReadModel(Protocol):
    """A projection's own part: its name, its tables (templates in `adapters.database.schema`),
    and how a batch of log events changes them."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> Sequence[str]:
        """The base names of its tables (as in `adapters.database.schema.PROJECTION_TABLES`)."""
        ...

    def write(self, db: Database, cursor: Any, tables: Mapping[str, str], batch: Sequence[LogEvent]) -> None:
        """Writes what `batch` changes, with `cursor` (inside the projector's transaction), into
        the tables named `tables[table]`. Must be deterministic: a rebuild replays the same log.
        The batch holds no tombstones: those are `erase`d."""
        ...

    def erase(self, db: Database, cursor: Any, tables: Mapping[str, str], session_numbers: Sequence[int]) -> None:
        """Deletes every row these sessions have in the tables named `tables[table]`: they were
        erased (by the erasure's own transaction, and again when a projection meets their
        tombstones), and nothing of what they held may remain."""
        ...


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    behind: int
    state: str
    updated_at: datetime | None
    error: str | None = None
    failed_position: int | None = None
    seconds_behind: float = 0.0
    """How long ago the oldest event not yet projected was recorded (0 when caught up)."""


class ProjectionConflict(Exception):
    """Another projector moved the position first; the batch was rolled back."""


class ProjectionFailed(Exception):
    """The read model raised on an event; the projection stopped before it."""

    def __init__(self, name: str, position: int, error: str) -> None:
        super().__init__(f"projection {name} failed at log position {position}: {error}")
        self.name, self.position, self.error = name, position, error


class Progress:
    """The position this process last saw a projection reach, and a way to wait for more."""

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


def tracked_position(database: Database, name: str) -> int:
    rows = database.fetch_all("SELECT position FROM projection_tracking WHERE name = %s", (name,))
    return int(rows[0]["position"]) if rows else 0


class SessionNumbers:
    """Aggregate id -> public session number, learnt from the log and `session_directory`."""

    LIMIT = 100_000

    def __init__(self, database: Database) -> None:
        self._db = database
        self._numbers: dict[UUID, int] = {}

    def learn(self, session_uuid: UUID, number: int) -> None:
        self._numbers[session_uuid] = number

    def of(self, session_uuids: set[UUID]) -> Mapping[UUID, int]:
        if len(self._numbers) > self.LIMIT:
            self._numbers.clear()
        unknown = session_uuids - self._numbers.keys()
        if unknown:
            self._numbers.update(self._db.session_numbers_of(unknown))
        return self._numbers


class Projector:
    def __init__(
        self,
        model: ReadModel,
        log: SessionLog,
        database: Database,
        *,
        tracking_name: str | None = None,
        tables: Mapping[str, str] | None = None,
        batch_size: int = 1000,
        announce: bool = False,
    ) -> None:
        self.model = model
        self.name = tracking_name or model.name
        self.tables = dict(tables or {table: table for table in model.tables})
        self.batch_size = batch_size
        self.progress = Progress()
        self._log = log
        self._db = database
        self._announce = announce
        self._numbers = SessionNumbers(database)
        self._reader = LogReader(log.mapper, database)
        self._committed_to: int | None = None
        """The position this projector's last commit moved to: where its next batch starts, with no
        read of the tracking row. Forgotten on a conflict or a failure, and by `catch_up()`."""
        self._advance = database.statement(
            "UPDATE projection_tracking SET position = %s, updated_at = %s"
            " WHERE name = %s AND position = %s AND state = 'live' RETURNING position"
        )

    # --- reading the log ---------------------------------------------------------------------
    def head(self) -> int:
        """The position of the last event in the log."""
        with store_errors():
            return int(self._log.recorder.max_notification_id() or 0)

    def position(self) -> int:
        position = tracked_position(self._db, self.name)
        self.progress.advanced_to(position)
        return position

    def read_log(self, after: int, limit: int) -> tuple[list[LogEvent], int]:
        """Up to `limit` log events after `after`, and the position the batch ends at."""
        decoded = self._reader.read(after, limit)
        if not decoded:
            return [], after
        for _, event in decoded:
            if isinstance(event, Session.Started | Session.Erased):  # they carry the session's number
                self._numbers.learn(event.originator_id, event.number)
        numbers = self._numbers.of({event.originator_id for _, event in decoded})
        # A session missing from the directory was erased after this batch was read: its events go.
        batch = [
            LogEvent(position, numbers[event.originator_id], event)
            for position, event in decoded
            if event.originator_id in numbers
        ]
        return batch, decoded[-1][0]

    # --- projecting --------------------------------------------------------------------------
    def process_batch(self) -> int:
        """Projects the next batch; returns how many log events it consumed. Raises
        `ProjectionConflict` if another projector moved first, `ProjectionFailed` if the read
        model raised (after keeping the events before the one that failed)."""
        start = self._start() if self._committed_to is None else self._committed_to
        batch, end = self.read_log(start, self.batch_size)
        if end == start:
            return 0
        try:
            self._commit(start, end, batch)
        except (ProjectionConflict, StoreUnavailable, *UNREACHABLE):
            raise
        except Exception as error:
            if isinstance(error, IntegrityError):  # a rival wrote these rows first
                raise ProjectionConflict(str(error)) from error
            self._isolate_failure(start, batch, error)
        return max(len(batch), 1)  # a batch whose every event was dropped still moved the position

    def _commit(self, start: int, end: int, batch: Sequence[LogEvent]) -> None:
        self._committed_to = None  # known again once this commits
        with self._db.transaction(commit=True) as cursor:
            self.apply_in(cursor, start, end, batch)
        self._committed_to = end
        self.progress.advanced_to(end)

    def apply_in(self, cursor: Any, start: int, end: int, batch: Sequence[LogEvent]) -> None:
        """Moves the position from `start` to `end` and writes the batch, with `cursor`. The
        position moves first: a rival projector blocks on its row until this commits, then finds
        it moved and gives up before writing anything."""
        cursor.execute(self._advance, (end, self._db.now(), self.name, start))
        if not cursor.fetchall():
            raise ProjectionConflict(f"{self.name}: position moved from {start} (or the projection failed)")
        erased = sorted({e.session_number for e in batch if e.erased})
        events = [e for e in batch if not e.erased]
        if events:  # only now, holding the tracking row an erasure locks, is "not erased" final
            present = self._db.sessions_present(cursor, {e.session_number for e in events})
            events = [e for e in events if e.session_number in present]
        if events:
            self.model.write(self._db, cursor, self.tables, events)
        if erased:
            self.model.erase(self._db, cursor, self.tables, erased)
        if self._announce:
            self._db.announce(cursor, FEED_CHANNEL, str(end))  # delivered on commit

    def _isolate_failure(self, start: int, batch: Sequence[LogEvent], error: Exception) -> None:
        """The batch failed as a whole: apply its events one by one, keeping those before the
        one that fails, and record that one as the projection's failure."""
        position = start
        for event in batch:
            try:
                self._commit(position, event.position, [event])
            except (ProjectionConflict, StoreUnavailable, IntegrityError, *UNREACHABLE):
                raise
            except Exception as failure:
                self._fail(event.position, failure)
            position = event.position
        # Each event alone went through (a read model that failed only on the batch as a whole):
        # everything is projected, and the error is logged.
        logger.warning("projection %s: a batch failed (%r) but each of its events went through", self.name, error)

    def _fail(self, position: int, error: Exception) -> None:
        self._committed_to = None
        message = f"{type(error).__name__}: {error}"[:2000]
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement(
                    "UPDATE projection_tracking SET state = 'failed', error = %s, failed_position = %s,"
                    " updated_at = %s WHERE name = %s"
                ),
                (message, position, self._db.now(), self.name),
            )
        logger.error("projection %s failed at log position %s: %s", self.name, position, message, exc_info=error)
        raise ProjectionFailed(self.name, position, message) from error

    def _start(self) -> int:
        """The position the next batch starts from, in one read with the state: raises
        `ProjectionFailed` if the projection has failed."""
        rows = self._db.fetch_all(
            "SELECT position, state, error, failed_position FROM projection_tracking WHERE name = %s", (self.name,)
        )
        if not rows:
            return 0
        row = rows[0]
        if row["state"] == FAILED:
            raise ProjectionFailed(self.name, int(row["failed_position"] or 0), str(row["error"]))
        position = int(row["position"])
        self.progress.advanced_to(position)
        return position

    def forget_position(self) -> None:
        """The next batch reads the tracked position first: after a wait, someone else may have
        moved it (appends project `session_events` themselves when it has caught up)."""
        self._committed_to = None

    def retry(self) -> bool:
        """Clears a failure so that projecting resumes at the event that failed (after a fix has
        been deployed); True if the projection had failed."""
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement(
                    "UPDATE projection_tracking SET state = 'live', error = NULL, failed_position = NULL"
                    " WHERE name = %s AND state = 'failed' RETURNING name"
                ),
                (self.name,),
            )
            return bool(cursor.fetchall())

    def catch_up(self, on_progress: Callable[[int], None] | None = None) -> None:
        """Projects until the head of the log, synchronously (rebuilds, tests). Another projector
        (a running service) may do part of the work: a conflict just means carrying on from its
        position. `on_progress` is told each position reached. It starts from the tracked
        position, whoever set it."""
        self._committed_to = None
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

    # --- status ------------------------------------------------------------------------------
    def status(self) -> ProjectionStatus:
        rows = self._db.fetch_all(
            "SELECT position, updated_at, state, error, failed_position FROM projection_tracking WHERE name = %s",
            (self.name,),
        )
        if not rows:
            return ProjectionStatus(self.name, 0, self.head(), self._db.count_log_events_after(0), LIVE, None)
        row = rows[0]
        position = int(row["position"])
        behind = self._db.count_log_events_after(position)
        return ProjectionStatus(
            name=self.name,
            position=position,
            head=self.head(),
            behind=behind,
            state=str(row["state"]),
            updated_at=self._db.read_time(row["updated_at"]) if row["updated_at"] is not None else None,
            error=row["error"],
            failed_position=int(row["failed_position"]) if row["failed_position"] is not None else None,
            seconds_behind=self._seconds_behind(position) if behind else 0.0,
        )

    def _seconds_behind(self, position: int) -> float:
        batch, _ = self.read_log(position, 1)
        if not batch:
            return 0.0
        return max(0.0, (datetime.now(UTC) - batch[0].event.timestamp).total_seconds())
