"""Group commit: recording calls that arrive while a transaction is in flight are decided
together and saved in the next one, so many requests, for many sessions, share one lock on the
log and one commit flush.

One committer thread per process takes what has queued (bounded in events and bytes, so that a
group stays quick), and for each group:
1. takes a copy of every session concerned (as this process last saw it: no round trip),
2. decides each call in arrival order on its session: calls for the same session apply in order
   to the same copy, each seeing the session as the calls before it left it,
3. saves every session's new events in one transaction, with each call's announcement. The
   client-chosen event ids are checked by that transaction, under the log's lock: a session that
   has already recorded one (a client retrying) is left out, and its calls are decided again
   once the store has said which ids it knows (so a first attempt costs no read).
Each call is answered only after its own events are durable, with exactly its own result (the
session as its events left it). A session another process wrote meanwhile is left out of the
transaction by the store (a conflict) and only its calls are decided again, on the session as
stored now: the group's other calls are not held back. A call that fails on its own (its session
is missing or foreign, a side effect raises) fails alone; a transaction that fails for a reason
of its own is retried call by call, so that one bad request cannot fail the others.

When the outcome of a transaction is unknown (the connection died after the commit was sent),
the next attempt also asks the store about the ids it had sent: events found recorded were this
call's own and are not recorded twice.

A call still waiting in the queue can be cancelled (its client went away): it is dropped and
never recorded. Once taken into a group it completes, recorded whole or not at all."""

from __future__ import annotations

import copy
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from application.errors import ConcurrentUpdate, SessionNotFound, StoreUnavailable
from application.notifications import Announcement
from application.ports import SessionStore
from application.recording import CallAnnounced, EventsHandled, SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import NewEvent, Session
from domain.side_effects import Note

logger = logging.getLogger("session_events.sessions")

MAX_ATTEMPTS = 50
"""Conflicts a call may meet before it fails; each attempt re-reads its session and re-decides."""
MAX_GROUP_EVENTS = 5_000
MAX_GROUP_BYTES = 4 * 1024 * 1024
"""A group takes calls while it stays within both bounds (a single larger call goes alone)."""
UNKNOWN_OUTCOME_RETRIES = 1
"""Transactions whose outcome was unknown that a call may retry before answering unavailable."""


@dataclass(frozen=True)
class GroupSaved:
    """What one transaction of the committer carried, for metrics."""

    calls: int
    events: int
    sessions: int
    conflicts: int = 0
    """Sessions left out because another process had saved them first (their calls go again)."""


@dataclass(eq=False)
class _Call:
    scope: Scope
    session_id: int
    events: Sequence[NewEvent]
    future: Future[EventsHandled]
    size: int
    attempts: int = 0
    unknown_outcomes: int = 0
    sent_ids: set[UUID] = field(default_factory=set)
    """Ids this call sent in a transaction whose outcome is unknown: found recorded, they are its own."""

    def ids_to_check(self) -> set[UUID]:
        return {e.event_id for e in self.events if e.id_from_client} | self.sent_ids


@dataclass(eq=False)
class _Decided:
    """A call decided on its session: its answer, announcement and notes, used once saved."""

    call: _Call
    answer: EventsHandled
    announced: CallAnnounced | None
    notes: Sequence[Note]


@dataclass(eq=False)
class _SessionWork:
    session: Session
    recorded_ids: set[UUID] = field(default_factory=set)
    decided: list[_Decided] = field(default_factory=list)
    unverified_ids: set[UUID] = field(default_factory=set)
    """Client-chosen ids decided on without asking the store first: the save checks them."""

    @property
    def changed(self) -> bool:
        return bool(self.session.pending_events)


def _size(events: Sequence[NewEvent]) -> int:
    return sum(len(e.data_json) + len(e.metadata_json or "") for e in events)


class GroupCommit:
    def __init__(
        self,
        store: SessionStore,
        *,
        max_group_events: int = MAX_GROUP_EVENTS,
        max_group_bytes: int = MAX_GROUP_BYTES,
        sleep: Callable[[float], Any] = time.sleep,
        on_saved: Callable[[GroupSaved], None] | None = None,
    ) -> None:
        self._store = store
        self._max_events = max_group_events
        self._max_bytes = max_group_bytes
        self._sleep = sleep
        self._on_saved = on_saved
        self._queue: deque[_Call] = deque()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def observe(self, on_saved: Callable[[GroupSaved], None]) -> None:
        """Calls `on_saved` after each transaction (the HTTP layer counts group sizes)."""
        self._on_saved = on_saved

    def submit(self, scope: Scope, session_id: int, events: Sequence[NewEvent]) -> Future[EventsHandled]:
        """Queues a call; its future completes once its events are durable (or it failed)."""
        call = _Call(scope, session_id, events, Future(), _size(events))
        with self._condition:
            if self._closed:
                raise StoreUnavailable("the service is shutting down")
            self._queue.append(call)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="session-events-committer", daemon=True)
                self._thread.start()
            self._condition.notify()
        return call.future

    def close(self, timeout: float = 5.0) -> None:
        """Finishes what is queued, then stops the committer."""
        with self._condition:
            self._closed = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- the committer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue and not self._closed:
                    self._condition.wait()
                if not self._queue:
                    return
                group = self._take_group()
            if not group:
                continue
            try:
                self._commit(group)
            except BaseException as error:  # never leave a caller waiting forever
                logger.exception("group commit failed")
                for call in group:
                    if not call.future.done():
                        call.future.set_exception(error)

    def _take_group(self) -> list[_Call]:
        """Takes queued calls in order while the group stays within its bounds; a call whose
        client went away (cancelled) is dropped. Called with the condition held."""
        group: list[_Call] = []
        events = size = 0
        while self._queue:
            call = self._queue[0]
            if group and (events + len(call.events) > self._max_events or size + call.size > self._max_bytes):
                break
            self._queue.popleft()
            if not call.future.set_running_or_notify_cancel():
                continue
            group.append(call)
            events += len(call.events)
            size += call.size
        return group

    def _commit(self, group: list[_Call]) -> None:
        """Saves the group; the calls of sessions that conflicted are decided again, until each
        call has succeeded or failed."""
        pending = group
        refresh: set[int] = set()
        attempt = 0
        while pending:
            attempt += 1
            if attempt > 1:
                self._sleep(random.uniform(0, 0.002 * min(attempt - 1, 10)))
            pending, refresh = self._attempt(pending, refresh)

    def _attempt(self, calls: list[_Call], refresh: set[int]) -> tuple[list[_Call], set[int]]:
        """One transaction for `calls`; returns the calls to decide again and the sessions to
        read afresh for them."""
        try:
            work = self._decide(calls, refresh)
        except StoreUnavailable as unavailable:
            self._fail(calls, unavailable)
            return [], set()
        for number, w in list(work.items()):  # nothing to save: answered at once
            if not w.changed:
                self._answer(w)
                del work[number]
        if not work:
            return [], set()
        changes = [
            SessionChanges(w.session, [d.announced for d in w.decided if d.announced], frozenset(w.unverified_ids))
            for w in work.values()
        ]
        sent = {number: self._sent_ids(w) for number, w in work.items()}
        saved = GroupSaved(
            calls=sum(len(w.decided) for w in work.values()),
            events=sum(len(ids) for ids in sent.values()),
            sessions=len(work),
        )
        try:
            outcomes = self._store.save_changes(changes)
        except StoreUnavailable as unavailable:
            return self._after_unknown_outcome(work, sent, unavailable)
        except Exception as error:
            return self._after_failed_transaction(work, error)
        retry: list[_Call] = []
        for number, w in work.items():
            outcome = outcomes.get(number, SaveOutcome.CONFLICT)
            if outcome is SaveOutcome.SAVED:
                self._answer(w)
            elif outcome is SaveOutcome.GONE:
                self._fail([d.call for d in w.decided], SessionNotFound(number))
            else:
                retry += self._again(w, ConcurrentUpdate(f"session {number} was saved by another writer"))
        if self._on_saved is not None:
            conflicts = sum(1 for outcome in outcomes.values() if outcome is SaveOutcome.CONFLICT)
            self._on_saved(replace(saved, conflicts=conflicts))
        return self._in_arrival_order(retry, calls), {c.session_id for c in retry}

    def _decide(self, calls: list[_Call], refresh: set[int]) -> dict[int, _SessionWork]:
        numbers = {c.session_id for c in calls}
        # A call decided again is decided on its session as stored now (and asks which ids it knows).
        refresh = (refresh | {c.session_id for c in calls if c.attempts or c.sent_ids}) & numbers
        sessions = self._store.for_update(numbers, refresh=refresh)
        wanted: dict[int, set[UUID]] = {}
        for call in calls:  # a call's first attempt leaves its ids to the save to check
            if (call.attempts or call.sent_ids) and (ids := call.ids_to_check()):
                wanted.setdefault(call.session_id, set()).update(ids)
        known = self._store.recorded_event_ids(wanted) if wanted else {}
        work: dict[int, _SessionWork] = {}
        for call in calls:
            session = sessions.get(call.session_id)
            if session is None or not session.belongs_to(call.scope.account_id, call.scope.user_id):
                self._fail([call], SessionNotFound(call.session_id))
                continue
            w = work.setdefault(call.session_id, _SessionWork(session))
            try:
                w.decided.append(self._decide_call(call, w, known.get(call.session_id, set())))
            except Exception as error:  # this call fails; the calls before it are decided again
                logger.exception("session %s: recording failed", call.session_id)
                self._fail([call], error)
                replayed = self._replayed(w, known.get(call.session_id, set()))
                if replayed is None:  # gone meanwhile: the calls after it fail too
                    del work[call.session_id]
                    sessions.pop(call.session_id, None)
                else:
                    work[call.session_id] = replayed
        return work

    @staticmethod
    def _decide_call(call: _Call, work: _SessionWork, known: set[UUID]) -> _Decided:
        if not call.attempts and not call.sent_ids:
            work.unverified_ids.update(e.event_id for e in call.events if e.id_from_client)
        call.attempts += 1
        session = work.session
        fresh = [e for e in call.events if e.event_id not in known and e.event_id not in work.recorded_ids]
        own_earlier = len({e.event_id for e in call.events if e.event_id in call.sent_ids and e.event_id in known})
        if not fresh:
            return _Decided(call, EventsHandled(copy.copy(session), own_earlier), None, ())
        recorded = session.record(fresh)
        work.recorded_ids.update(e.event_id for e in fresh)
        announcement = Announcement(
            session_id=call.session_id,
            account_id=session.account_id,
            user_id=session.user_id,
            event_count=recorded.new_event_count,
            session_update=(
                {"status": session.status, "external_conversation_id": session.external_conversation_id}
                if recorded.session_changed
                else None
            ),
        )
        return _Decided(
            call,
            EventsHandled(copy.copy(session), recorded.new_event_count + own_earlier),
            CallAnnounced(announcement, session.version),
            recorded.notes,
        )

    def _replayed(self, failed: _SessionWork, known: set[UUID]) -> _SessionWork | None:
        """The session as the calls decided before the one that raised left it: a fresh copy
        (the call that raised left the old one half changed), with those calls decided again."""
        number = failed.session.number
        fresh = self._store.for_update([number]).get(number)
        if fresh is None:
            self._fail([d.call for d in failed.decided], SessionNotFound(number))
            return None
        work = _SessionWork(fresh)
        for decided in failed.decided:
            work.decided.append(self._decide_call(decided.call, work, known))
        return work

    @staticmethod
    def _sent_ids(work: _SessionWork) -> set[UUID]:
        return {e.event_id for e in work.session.pending_events if isinstance(e, Session.EventRecorded)}

    def _after_unknown_outcome(
        self, work: dict[int, _SessionWork], sent: dict[int, set[UUID]], unavailable: StoreUnavailable
    ) -> tuple[list[_Call], set[int]]:
        """The transaction may or may not have committed: decide again once, on the sessions as
        stored, checking the ids sent (found recorded, they are the call's own)."""
        retry: list[_Call] = []
        for number, w in work.items():
            for decided in w.decided:
                call = decided.call
                call.unknown_outcomes += 1
                if call.unknown_outcomes > UNKNOWN_OUTCOME_RETRIES:
                    self._fail([call], unavailable)
                    continue
                call.sent_ids |= {e.event_id for e in call.events} & sent[number]
                retry.append(call)
        return retry, {c.session_id for c in retry}

    def _after_failed_transaction(
        self, work: dict[int, _SessionWork], error: Exception
    ) -> tuple[list[_Call], set[int]]:
        """The store refused the transaction for a reason of its own (not a conflict, not the
        store going away): if it held one call, that call fails; otherwise each call is tried in
        a transaction of its own, so that the one to blame fails alone."""
        calls = [d.call for w in work.values() for d in w.decided]
        if len(calls) == 1:
            logger.error("session %s: saving failed: %r", calls[0].session_id, error)
            self._fail(calls, error)
            return [], set()
        for call in calls:
            self._commit([call])
        return [], set()

    def _again(self, work: _SessionWork, conflict: ConcurrentUpdate) -> list[_Call]:
        again: list[_Call] = []
        for decided in work.decided:
            if decided.call.attempts >= MAX_ATTEMPTS:
                self._fail([decided.call], conflict)
            else:
                again.append(decided.call)
        return again

    @staticmethod
    def _in_arrival_order(retry: list[_Call], calls: list[_Call]) -> list[_Call]:
        chosen = set(map(id, retry))
        return [c for c in calls if id(c) in chosen]

    @staticmethod
    def _answer(work: _SessionWork) -> None:
        for decided in work.decided:
            for note in decided.notes:
                logger.log(note.level, "session %s: %s", decided.call.session_id, note.message)
            if not decided.call.future.done():
                decided.call.future.set_result(decided.answer)

    @staticmethod
    def _fail(calls: Sequence[_Call], error: BaseException) -> None:
        for call in calls:
            if not call.future.done():
                call.future.set_exception(error)
