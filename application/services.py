"""The use cases: create and read sessions, record events (one or a batch), query events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future

from application.errors import EventRejected, InvalidQuery, SessionNotFound
from application.group_commit import GroupCommit, GroupSaved
from application.ports import EventViews, SessionStore, StatsViews
from application.queries import EventQuery, Page, RecordedEvent, SessionStats
from application.recording import EventsHandled, SaveOutcome, SessionChanges
from application.scope import Scope
from application.validation import INVALID, RawFields, SessionFields, parse_event, parse_events
from domain.session import NewEvent, Session


class SessionService:
    def __init__(self, store: SessionStore, views: EventViews, stats: StatsViews, recorder: GroupCommit) -> None:
        self._store = store
        self._views = views
        self._stats = stats
        self._recorder = recorder

    def observe_groups(self, on_saved: Callable[[GroupSaved], None]) -> None:
        """Calls `on_saved` after each transaction of recording calls (for metrics)."""
        self._recorder.observe(on_saved)

    def close(self) -> None:
        """Records what is queued, then stops recording (the service is shutting down)."""
        self._recorder.close()

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
        if self._store.save_changes([SessionChanges(session)]).get(session.number) is not SaveOutcome.SAVED:
            raise AssertionError(f"a new session number was taken: {session.number}")  # never reused
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

    def record(self, scope: Scope, session_id: int, events: Sequence[NewEvent]) -> Future[EventsHandled]:
        """Records validated events; the future completes once they are durable. Concurrent calls
        are saved together (`application.group_commit`), each answered with its own result."""
        return self._recorder.submit(scope, session_id, events)

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
        """Validates, then records and waits. A missing session is a 404 whatever the body: an
        invalid body is reported only for a session the caller could record in."""
        try:
            events = parse()
        except EventRejected:
            self.get_session(scope, session_id)
            raise
        return self.record(scope, session_id, events).result()
