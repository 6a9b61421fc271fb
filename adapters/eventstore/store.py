"""`SessionStore` on the eventsourcing session log, with this process's cache of sessions.

Reads (`get`) bring the cached session up to date with what is stored, confirming in the same
round trip that it still exists, so a read sees every write that has answered, whichever process
made it, and never an erased session. Writes (`for_update`) decide on the cached session as it
is, without a read: if another process has saved the session since, the save is refused for
that session (a conflict) and the caller decides again on the session read afresh."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from adapters.database.base import Database, store_errors
from adapters.eventstore.log import SessionLog
from adapters.eventstore.session_cache import SessionCache, working_copy
from application.errors import SessionNotFound
from application.queries import Page
from application.recording import SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import Session


class EventSourcedSessionStore:
    def __init__(self, log: SessionLog, database: Database, cache: SessionCache | None = None) -> None:
        self._log = log
        self._db = database
        self.cache = cache if cache is not None else SessionCache()

    def next_number(self) -> int:
        return self._db.allocate_session_number()

    def get(self, number: int) -> Session:
        session = self._current(number)
        if session is None:
            raise SessionNotFound(number)
        return session

    def get_as_of(self, number: int, sequence: int) -> Session:
        """With a version, the library's repository replays from the latest snapshot at or
        before that version: at most SNAPSHOT_INTERVAL events, however long the session. The
        past is never cached."""
        if sequence < 0:
            raise ValueError(f"no event {sequence} in a session")
        session = self._load(number, version=sequence + 1)  # version 1 is the session's creation
        if session is None:
            raise SessionNotFound(number)
        if session.event_count != sequence:
            raise ValueError(f"session {number} has {session.event_count} events, not {sequence}")
        return session

    def for_update(self, numbers: Collection[int], *, refresh: Collection[int] = ()) -> dict[int, Session]:
        sessions: dict[int, Session] = {}
        for number in numbers:
            cached = None if number in refresh else self.cache.get(number)
            session = cached if cached is not None else self._current(number)
            if session is not None:
                sessions[number] = working_copy(session)
        return sessions

    def recorded_event_ids(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        wanted = {number: ids for number, ids in wanted.items() if ids}
        if not wanted:
            return {}
        return self._db.recorded_event_ids_of(wanted)

    def save_changes(self, changes: Sequence[SessionChanges]) -> dict[int, SaveOutcome]:
        pending = {c.session.number: len(c.session.pending_events) for c in changes}
        with store_errors():
            written = self._log.write_group(changes)
        outcomes: dict[int, SaveOutcome] = {}
        for change in changes:
            session = change.session
            if session.id in written.saved:
                outcomes[session.number] = SaveOutcome.SAVED
                self.cache.put(session)
                self._log.snapshot_if_due(session, pending[session.number])
            elif session.id in written.gone:
                outcomes[session.number] = SaveOutcome.GONE
                self.cache.evict(session.number)
            else:  # the cached session is behind: `for_update(refresh=...)` brings it up to date
                outcomes[session.number] = SaveOutcome.CONFLICT
        return outcomes

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

    # --- loading --------------------------------------------------------------------------------
    def _current(self, number: int) -> Session | None:
        """The session as stored now, None if it does not exist (or no longer: erased): the cached
        one, or one loaded from its snapshot and events, brought up to date and confirmed in one
        read. The cache only ever gets new objects."""
        if number < 1:
            return None
        cached = self.cache.get(number)
        if cached is None:
            cached = self._load(number, version=None)
            if cached is None:
                return None
        with store_errors():
            tail = self._db.session_tail(number, cached.id, cached.version)
        if tail is None:
            self.cache.evict(number)
            return None
        if not tail:
            self.cache.put(cached)
            return cached
        session = working_copy(cached)
        for stored in tail:
            event = self._log.mapper.to_domain_event(stored)
            if not isinstance(event, Session.Event):
                raise TypeError(f"session {number} holds a {type(event).__name__}")
            event.mutate(session)
        self.cache.put(session)
        return session

    def _load(self, number: int, version: int | None) -> Session | None:
        if number < 1:
            return None
        with store_errors():
            try:
                session: object = self._log.repository.get(Session.create_id(number), version=version)
            except AggregateNotFoundError:
                return None
        if not isinstance(session, Session):
            raise TypeError(f"aggregate of session {number} is a {type(session).__name__}")
        return session
