"""The use cases: create and read sessions, record events (one or a batch), query events."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from application.errors import ConcurrentUpdate, InvalidQuery, SessionNotFound
from application.notifications import Announcement
from application.ports import EventViews, SessionStore, StatsViews
from application.queries import EventQuery, Page, RecordedEvent, SessionStats
from application.scope import Scope
from application.validation import INVALID, RawFields, SessionFields, parse_event, parse_events
from domain.session import NewEvent, Session

logger = logging.getLogger("session_events.sessions")

MAX_ATTEMPTS = 50
"""Optimistic-concurrency retries before giving up; each attempt re-reads and re-decides."""


@dataclass(frozen=True)
class EventsHandled:
    """A recording call's answer: the session as the events left it, and how many were new
    (events whose id the session had already recorded are not counted)."""

    session: Session
    new_event_count: int


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        views: EventViews,
        stats: StatsViews,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self._store = store
        self._views = views
        self._stats = stats
        self._sleep = sleep

    def create_session(self, scope: Scope, fields: SessionFields | None = None) -> Session:
        fields = fields or SessionFields()
        session = Session(
            number=self._store.next_number(),
            account_id=scope.account_id,
            user_id=scope.user_id,
            type=fields.type,
            agent=fields.agent,
            environment=fields.environment,
            state_json=fields.state_json,
        )
        self._store.save(session)
        return session

    def get_session(self, scope: Scope, session_id: int) -> Session:
        session = self._store.get(session_id)
        if not session.belongs_to(scope.account_id, scope.user_id):
            raise SessionNotFound(session_id)
        return session

    def get_session_as_of(self, scope: Scope, session_id: int, sequence: int) -> Session:
        """The session as it stood right after its `sequence`-th event (0: as created), so that
        an analyst can see what each event changed. Whose session it is comes first: a foreign
        session is not found, whatever the sequence."""
        current = self.get_session(scope, session_id)
        if not 0 <= sequence <= current.event_count:
            raise InvalidQuery(
                {"sequence": [f"must be between 0 and {current.event_count}, the session's event count"]}
            )
        return self._store.get_as_of(session_id, sequence)

    def list_sessions(self, scope: Scope, page: Page, conversation_id: str | None = None) -> list[Session]:
        """The scope's sessions, most recent first; with `conversation_id`, those whose
        `external_conversation_id` it is (how a client finds the session it recorded before)."""
        if conversation_id is not None and "\x00" in conversation_id:  # no stored id can hold one
            raise InvalidQuery({"conversation_id": [INVALID]})
        found = []
        for number in self._store.numbers_in_scope(scope, page, conversation_id):
            try:
                found.append(self._store.get(number))
            except SessionNotFound:  # erased since it was listed
                continue
        return found

    def handle_event(self, scope: Scope, session_id: int, fields: RawFields) -> EventsHandled:
        return self._record(scope, session_id, lambda: [parse_event(fields, session_id)])

    def handle_events(self, scope: Scope, session_id: int, batch: list[RawFields]) -> EventsHandled:
        return self._record(scope, session_id, lambda: parse_events(batch, session_id))

    def get_events(self, scope: Scope, session_id: int, query: EventQuery) -> Sequence[RecordedEvent]:
        self.get_session(scope, session_id)
        return self._views.events(session_id, query)

    def get_stats(self, scope: Scope, session_id: int) -> SessionStats:
        """What the session's events add up to, counting every event recorded before the call."""
        self.get_session(scope, session_id)
        return self._stats.stats(session_id)

    def _record(self, scope: Scope, session_id: int, parse: Callable[[], list[NewEvent]]) -> EventsHandled:
        """Decides and saves, again and again if other writers get there first: concurrent
        writers to one session all succeed, and an id already recorded is never recorded twice.
        The session is looked up before the events are validated: a missing session is a 404
        whatever the body."""
        session = self.get_session(scope, session_id)
        events = parse()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1:
                session = self.get_session(scope, session_id)
            known = self._store.recorded_event_ids(session_id, [e.event_id for e in events if e.id_from_client])
            fresh = [e for e in events if e.event_id not in known]
            if not fresh:
                return EventsHandled(session, 0)
            recorded = session.record(fresh)
            announcement = Announcement(
                session_id=session_id,
                account_id=session.account_id,
                user_id=session.user_id,
                event_count=recorded.new_event_count,
                session_update=(
                    {"status": session.status, "external_conversation_id": session.external_conversation_id}
                    if recorded.session_changed
                    else None
                ),
            )
            try:
                self._store.save(session, announcement)
            except ConcurrentUpdate:
                if attempt == MAX_ATTEMPTS:
                    raise
                self._sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                continue
            for note in recorded.notes:
                logger.log(note.level, "session %s: %s", session_id, note.message)
            return EventsHandled(session, recorded.new_event_count)
        raise AssertionError("unreachable")
