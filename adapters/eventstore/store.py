"""`SessionStore` on the eventsourcing session log."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from adapters.database.base import Database, store_errors
from adapters.eventstore.log import SessionLog
from adapters.eventstore.recorders import DirectoryEntry, RecordedIds
from application.errors import ConcurrentUpdate, SessionNotFound
from application.notifications import Announcement
from application.queries import Page
from application.scope import Scope
from domain.session import Session


class EventSourcedSessionStore:
    def __init__(self, log: SessionLog, database: Database) -> None:
        self._log = log
        self._db = database

    def next_number(self) -> int:
        return self._db.allocate_session_number()

    def get(self, number: int) -> Session:
        return self._load(number, version=None)

    def get_as_of(self, number: int, sequence: int) -> Session:
        """With a version, the library's repository skips its cache both ways (an old version is
        never served to writers nor cached), and replays from the latest snapshot at or before
        that version: at most SNAPSHOT_INTERVAL events, however long the session."""
        if sequence < 0:
            raise ValueError(f"no event {sequence} in a session")
        session = self._load(number, version=sequence + 1)  # version 1 is the session's creation
        if session.event_count != sequence:
            raise ValueError(f"session {number} has {session.event_count} events, not {sequence}")
        return session

    def _load(self, number: int, version: int | None) -> Session:
        if number < 1:
            raise SessionNotFound(number)
        with store_errors():
            try:
                session: object = self._log.repository.get(Session.create_id(number), version=version)
            except AggregateNotFoundError:
                self._forget(number)
                raise SessionNotFound(number) from None
        if not isinstance(session, Session):
            raise TypeError(f"aggregate of session {number} is a {type(session).__name__}")
        return session

    def _forget(self, number: int) -> None:
        """An erased session may still be cached (its tombstone is what made it not found): its
        attributes leave this process's memory too."""
        cache = self._log.repository.cache
        if cache is not None:
            with contextlib.suppress(KeyError):
                cache.get(Session.create_id(number), evict=True)

    def save(self, session: Session, announcement: Announcement | None = None) -> None:
        pending = session.pending_events
        recorded_ids = [e.event_id for e in pending if isinstance(e, Session.EventRecorded)]
        entry = None
        if pending and pending[0].originator_version == 1:
            entry = DirectoryEntry(
                number=session.number,
                session_uuid=session.id,
                account_id=session.account_id,
                user_id=session.user_id,
                created_at=session.created_on,
            )
        with store_errors():
            try:
                self._log.save(
                    session,
                    directory_entry=entry,
                    recorded_ids=RecordedIds(session.number, recorded_ids),
                    announcement=announcement,
                )
            except IntegrityError as conflict:
                raise ConcurrentUpdate(str(conflict)) from conflict

    def recorded_event_ids(self, number: int, event_ids: Collection[UUID]) -> set[UUID]:
        if not event_ids:
            return set()
        return self._db.select_recorded_event_ids(number, event_ids)

    def numbers_in_scope(self, scope: Scope, page: Page, conversation_id: str | None = None) -> Sequence[int]:
        if conversation_id is None:
            rows = self._db.fetch_all(
                "SELECT number FROM session_directory WHERE account_id = %s AND user_id = %s"
                " ORDER BY number DESC LIMIT %s OFFSET %s",
                (scope.account_id, scope.user_id, page.limit, page.offset),
            )
        else:
            rows = self._db.fetch_all(
                "SELECT number FROM session_directory WHERE account_id = %s AND user_id = %s"
                " AND external_conversation_id = %s ORDER BY number DESC LIMIT %s OFFSET %s",
                (scope.account_id, scope.user_id, conversation_id, page.limit, page.offset),
            )
        return [int(row["number"]) for row in rows]
