"""A fake `SessionStore` for the use cases' unit tests: sessions in a dict, with knobs to make a
save meet a conflict, find a session gone, fail, or lose the store."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Mapping, Sequence
from uuid import UUID

from application.errors import SessionNotFound, StoreUnavailable
from application.notifications import Announcement
from application.queries import Page
from application.recording import SaveOutcome, SessionChanges
from application.scope import Scope
from domain.session import Session


class FakeStore:
    def __init__(self) -> None:
        self.sessions: dict[int, Session] = {}
        self.event_ids: dict[int, set[UUID]] = {}
        self.histories: dict[int, list[object]] = {}
        """Every event each session saved, in order, to replay for `get_as_of`."""
        self.announcements: list[Announcement] = []
        self.groups: list[list[tuple[int, int]]] = []
        """Each save: (session number, events saved) of each session it was given."""
        self.conflicts: dict[int, int] = {}
        """Session number -> how many more saves of it meet a conflict."""
        self.gone: set[int] = set()
        self.failing: set[int] = set()
        """A save holding one of these sessions raises (a fault of the store's own)."""
        self.unavailable_saves = 0
        """How many more saves raise `StoreUnavailable` after committing (an unknown outcome)."""
        self.lost_saves = 0
        """How many more saves raise `StoreUnavailable` before committing (an unknown outcome too)."""
        self.unavailable_loads = 0
        self.faulty_loads = 0
        """How many more `for_update` calls raise an error of the store's own (not `StoreUnavailable`)."""
        self.loads: list[tuple[int, bool]] = []
        """(number, refreshed) of every session `for_update` handed out."""
        self.reads = 0
        self.loads_as_of: list[tuple[int, int]] = []
        self.id_queries: list[dict[int, set[UUID]]] = []
        self.gate: threading.Event | None = None
        """When set to an Event, `for_update` waits for it (to let calls queue up behind)."""
        self.entered = threading.Event()

    def next_number(self) -> int:
        return len(self.sessions) + len(self.gone) + 1

    def get(self, number: int) -> Session:
        self.reads += 1
        if number not in self.sessions:
            raise SessionNotFound(number)
        return copy.deepcopy(self.sessions[number])

    def get_as_of(self, number: int, sequence: int) -> Session:
        self.loads_as_of.append((number, sequence))
        if number not in self.histories:
            raise SessionNotFound(number)
        events = self.histories[number][: sequence + 1]
        if not 0 <= sequence < len(self.histories[number]):
            raise ValueError(f"no event {sequence}")
        session = None
        for event in events:
            session = event.mutate(session)  # type: ignore[attr-defined]
        assert isinstance(session, Session)
        return session

    def for_update(self, numbers: Collection[int], *, refresh: Collection[int] = ()) -> dict[int, Session]:
        self.entered.set()
        if self.gate is not None:
            gate, self.gate = self.gate, None
            gate.wait(5)
        if self.unavailable_loads:
            self.unavailable_loads -= 1
            raise StoreUnavailable("the store went away")
        if self.faulty_loads:
            self.faulty_loads -= 1
            raise RuntimeError("a fault of the store")
        found = {}
        for number in numbers:
            if number in self.sessions:
                self.loads.append((number, number in refresh))
                found[number] = copy.deepcopy(self.sessions[number])
        return found

    def recorded_event_ids(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        self.id_queries.append({n: set(ids) for n, ids in wanted.items()})
        return {n: hits for n, ids in wanted.items() if (hits := self.event_ids.get(n, set()) & set(ids))}

    def save_changes(self, changes: Sequence[SessionChanges]) -> dict[int, SaveOutcome]:
        self.groups.append([(c.session.number, len(c.session.pending_events)) for c in changes])
        if self.lost_saves:
            self.lost_saves -= 1
            for change in changes:
                change.session.collect_events()
            raise StoreUnavailable("the connection died before the commit")
        if failing := self.failing & {c.session.number for c in changes}:
            raise RuntimeError(f"the store refused session {sorted(failing)}")
        outcomes: dict[int, SaveOutcome] = {}
        for change in changes:
            session = change.session
            number = session.number
            if number in self.gone:
                outcomes[number] = SaveOutcome.GONE
                continue
            if change.unverified_ids & self.event_ids.get(number, set()):
                outcomes[number] = SaveOutcome.CONFLICT  # a client retrying: decide again, knowing
                continue
            if self.conflicts.get(number, 0) > 0:
                self.conflicts[number] -= 1
                outcomes[number] = SaveOutcome.CONFLICT
                continue
            pending = session.collect_events()
            self.histories.setdefault(number, []).extend(pending)
            self.event_ids.setdefault(number, set()).update(
                e.event_id for e in pending if isinstance(e, Session.EventRecorded)
            )
            self.announcements += [a.announcement for a in change.announced]
            self.sessions[number] = copy.deepcopy(session)
            outcomes[number] = SaveOutcome.SAVED
        if self.unavailable_saves:
            self.unavailable_saves -= 1
            raise StoreUnavailable("the connection died after the commit was sent")
        return outcomes

    def numbers_in_scope(self, scope: Scope, page: Page, conversation_id: str | None = None) -> Sequence[int]:
        mine = sorted(
            (
                n
                for n, s in self.sessions.items()
                if s.belongs_to(scope.account_id, scope.user_id)
                and conversation_id in (None, s.external_conversation_id)
            ),
            reverse=True,
        )
        return mine[page.offset : page.offset + page.limit]
