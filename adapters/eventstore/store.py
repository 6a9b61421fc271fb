"""`SessionStore` on the eventsourcing session log."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from adapters.database import Database, store_errors, to_sqlite_time
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
        with self._db.transaction(commit=True) as cursor:
            if self._db.dialect == "postgres":
                cursor.execute("SELECT nextval('session_numbers') AS number")
                return int(cursor.fetchone()["number"])
            cursor.execute(
                "INSERT INTO session_numbers (allocated_at) VALUES (?)",
                (to_sqlite_time(datetime.now(UTC)),),
            )
            return int(cursor.lastrowid)

    def get(self, number: int) -> Session:
        if number < 1:
            raise SessionNotFound(number)
        with store_errors():
            try:
                session = self._log.repository.get(Session.create_id(number))
            except AggregateNotFoundError:
                raise SessionNotFound(number) from None
        assert isinstance(session, Session)
        return session

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
        if self._db.dialect == "postgres":
            # One index probe per id (LATERAL ... LIMIT 1): with `event_id = ANY(...)` the planner
            # scans all of a long session's ids, so appends slowed down as sessions grew.
            rows = self._db.fetch_all(
                "SELECT q.id AS event_id FROM unnest(%s::uuid[]) AS q(id) CROSS JOIN LATERAL"
                " (SELECT 1 FROM session_event_ids e WHERE e.session_id = %s AND e.event_id = q.id LIMIT 1) AS hit",
                (list(event_ids), number),
            )
            return {row["event_id"] for row in rows}
        found: set[UUID] = set()
        ids = [str(event_id) for event_id in event_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            rows = self._db.fetch_all(
                f"SELECT event_id FROM session_event_ids WHERE session_id = ? AND event_id IN ({placeholders})",
                (number, *chunk),
            )
            found.update(UUID(row["event_id"]) for row in rows)
        return found

    def numbers_in_scope(self, scope: Scope, page: Page) -> Sequence[int]:
        rows = self._db.fetch_all(
            "SELECT number FROM session_directory WHERE account_id = %s AND user_id = %s"
            " ORDER BY number DESC LIMIT %s OFFSET %s",
            (scope.account_id, scope.user_id, page.limit, page.offset),
        )
        return [int(row["number"]) for row in rows]
