"""Reads recorded events straight from the session log, for `session-events export`.

The log is the system of record: an export from it is complete even while a read model is behind,
being rebuilt or broken. Memory stays constant however long the log: it is read a page at a time
(the whole log through the recorder's notifications, one session through its own events), each
page is handed on before the next is read, and only the events that are exported are decoded
(a stored event's topic says what it holds, so a session's creation or tombstone is never
decoded). An export covers the log as it stood when it started: events recorded meanwhile are left
for the next one, and a session erased meanwhile is left out from then on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from adapters.database.base import Database, store_errors
from adapters.eventstore.log import SessionLog
from application.errors import SessionNotFound
from application.queries import RecordedEvent
from domain.session import Session

PAGE_SIZE = 500
"""Stored events read at a time: what bounds the export's memory (with the size of the events)."""
MAX_KNOWN_SESSIONS = 100_000
"""Session numbers remembered between pages before the memo starts again."""


class LogScan:
    """One pass over the log, from its start to where it stood when the scan was made. `total`
    is how much there is to read and `read` how much has been (log positions for the whole log,
    events for one session), for progress reports."""

    def __init__(
        self,
        log: SessionLog,
        database: Database,
        *,
        session_id: int | None,
        since: datetime | None,
        page_size: int,
    ) -> None:
        self._log = log
        self._db = database
        self._session_id = session_id
        self._since = since
        self._page_size = page_size
        self._numbers: dict[UUID, int] = {}
        self.read = 0
        with store_errors():
            if session_id is None:
                self.total = int(log.recorder.max_notification_id() or 0)
            else:
                self._session_uuid = self._known_session(session_id)
                last = log.recorder.select_events(self._session_uuid, desc=True, limit=1)
                self.total = last[0].originator_version - 1 if last else 0  # version 1 is its creation

    def pages(self) -> Iterator[list[RecordedEvent]]:
        """The recorded events, a page at a time, in log order; a page may be empty when the
        filters keep none of what it read."""
        if self._session_id is None:
            yield from self._log_pages()
        else:
            yield from self._session_pages(self._session_id)

    def _known_session(self, session_id: int) -> UUID:
        session_uuid = Session.create_id(session_id)
        if session_id < 1 or not self._db.session_numbers_of([session_uuid]):
            raise SessionNotFound(session_id)
        return session_uuid

    def _log_pages(self) -> Iterator[list[RecordedEvent]]:
        position = 0
        while position < self.total:
            with store_errors():
                notifications = self._log.recorder.select_notifications(
                    start=position, limit=self._page_size, stop=self.total, inclusive_of_start=False
                )
            if not notifications:
                return
            position = notifications[-1].id
            events = self._decoded(notifications)
            self._learn_numbers({e.originator_id for e in events})
            self.read = position
            yield self._recorded(events)

    def _session_pages(self, session_id: int) -> Iterator[list[RecordedEvent]]:
        version = 1  # the session's creation
        last = self.total + 1
        self._numbers = {self._session_uuid: session_id}
        while version < last:
            with store_errors():
                stored = self._log.recorder.select_events(
                    self._session_uuid, gt=version, lte=last, limit=self._page_size
                )
            if not stored:
                return
            version = stored[-1].originator_version
            self.read = version - 1
            yield self._recorded(self._decoded(stored))

    def _decoded(self, stored: Sequence[StoredEvent]) -> list[Session.EventRecorded]:
        """Only recorded events are decoded; the topic is resolved the library's way, so that
        a renamed class (`register_topic`) is still recognised."""
        events = []
        for item in stored:
            event_class = resolve_topic(item.topic)
            if isinstance(event_class, type) and issubclass(event_class, Session.EventRecorded):
                event = self._log.mapper.to_domain_event(item)
                assert isinstance(event, Session.EventRecorded)  # noqa: S101 (its class was just checked)
                if self._since is None or event.timestamp >= self._since:
                    events.append(event)
        return events

    def _learn_numbers(self, session_uuids: set[UUID]) -> None:
        unknown = session_uuids - self._numbers.keys()
        if not unknown:
            return
        if len(self._numbers) + len(unknown) > MAX_KNOWN_SESSIONS:
            self._numbers.clear()
        with store_errors():
            self._numbers.update(self._db.session_numbers_of(unknown))
        # A session missing from the directory was erased after the page was read (the row is
        # written with its first event): `_recorded` leaves its events out.

    def _recorded(self, events: list[Session.EventRecorded]) -> list[RecordedEvent]:
        return [
            RecordedEvent(
                event_id=e.event_id,
                session_id=self._numbers[e.originator_id],
                sequence=e.sequence,
                event_type=e.event_type,
                sent_at=e.sent_at,
                received_at=e.timestamp,
                data_json=e.data,
                metadata_json=e.metadata,
            )
            for e in events
            if e.originator_id in self._numbers
        ]


class LogExport:
    """The session log, read for an export."""

    def __init__(self, log: SessionLog, database: Database, page_size: int = PAGE_SIZE) -> None:
        self._log = log
        self._db = database
        self._page_size = page_size

    def scan(self, *, session_id: int | None = None, since: datetime | None = None) -> LogScan:
        """Every recorded event of the log (or of one session, `SessionNotFound` if there is no
        such session), received at or after `since` if it is given."""
        return LogScan(self._log, self._db, session_id=session_id, since=since, page_size=self._page_size)
