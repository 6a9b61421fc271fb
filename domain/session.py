"""The `Session` aggregate: one IDE coding session and the activity it has recorded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.event_types import EventType
from domain.side_effects import Note, effect_of
from domain.side_effects_0_1_0 import changes_by_0_1_0_rules
from domain.status import SessionStatus

_SESSION_NAMESPACE = uuid5(NAMESPACE_URL, "https://session-events/sessions")


@dataclass(frozen=True)
class NewEvent:
    """An activity event a client asks a session to record, already validated.

    `data_json` and `metadata_json` are the JSON texts exactly as the client sent them, so that
    every key, string and number (and its kind) comes back unchanged."""

    event_id: UUID
    event_type: EventType
    sent_at: datetime
    data_json: str
    metadata_json: str | None = None
    id_from_client: bool = False
    """A client-chosen id may be a retry of one already recorded; a server-made one cannot."""


@dataclass(frozen=True)
class Recorded:
    """What one `Session.record` decided: how many events were new and what to log."""

    new_event_count: int
    notes: Sequence[Note]
    session_changed: bool


class Session(Aggregate):
    """Sessions are numbered by the store (`number`, the public id); the aggregate id is derived
    from the number so that a session can be loaded knowing only its public id.

    Every stored shape carries a class version (docs/changing-an-event.md): each event class's
    `class_version` versions its stored state, and the aggregate's versions the state a snapshot
    stores (its attributes). Change one only with an upcaster from the shape before."""

    class_version = 1

    @staticmethod
    def create_id(number: int, **_: Any) -> UUID:
        return uuid5(_SESSION_NAMESPACE, f"session/{number}")

    class Started(Aggregate.Created):
        """The session was created. Its fields are `__init__`'s parameters, stored as given."""

        class_version = 1

        number: int
        account_id: int
        user_id: int
        type: str | None = None
        agent: str | None = None
        environment: str | None = None
        state_json: str | None = None

    @event(Started)
    def __init__(
        self,
        number: int,
        account_id: int,
        user_id: int,
        type: str | None = None,
        agent: str | None = None,
        environment: str | None = None,
        state_json: str | None = None,
    ) -> None:
        self.number = number
        self.account_id = account_id
        self.user_id = user_id
        self.type = type
        self.agent = agent
        self.environment = environment
        self.state_json = state_json
        self.status: str = SessionStatus.ACTIVE.value
        self.external_conversation_id: str | None = None
        self.event_count = 0

    class EventRecorded(Aggregate.Event):
        """One activity event, recorded as the session's `sequence`-th, with the outcome of its
        side effect: `changes`, the session attributes it set, decided once when the event was
        recorded. Replay only applies them, so whatever mutators are added or changed later, a
        session loads to the same state, from its history, a snapshot or a cache alike.

        Version 1 (release 0.1.0) stored no outcome. Its upcaster cannot see the session, so it
        sets `changes` to `None`, which means "the outcome the 0.1.0 rules give", and `apply`
        takes it from the frozen copy of those rules (`domain.side_effects_0_1_0`)."""

        class_version = 2

        event_id: UUID
        event_type: str
        sent_at: datetime
        data: str
        metadata: str | None
        sequence: int
        changes: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["changes"] = None

        def apply(self, session: Session) -> None:
            session.event_count = self.sequence
            changes = self.changes
            if changes is None:
                changes = changes_by_0_1_0_rules(session, self.event_type, self.data)
            for name, value in changes.items():
                setattr(session, name, value)

    class Erased(Aggregate.Event):
        """The session was erased: its stored events were deleted, and this tombstone, which holds
        nothing the client sent, took their place at the end of the log (ADR 0013). Replaying it
        ends the session, so a process that still has the session cached finds it gone, and so
        does every projection, live or rebuilding, that reaches it. `number` is the public id,
        which can no longer be looked up once the session is gone."""

        class_version = 1

        number: int

        @classmethod
        def of(cls, number: int, last_version: int) -> Session.Erased:
            """The tombstone of session `number`, following its last stored event."""
            return cls(  # type: ignore[call-arg]  # the library makes event classes dataclasses when it defines them
                originator_id=Session.create_id(number),
                originator_version=last_version + 1,
                timestamp=cls.create_timestamp(),
                number=number,
            )

        def mutate(self, aggregate: Any) -> None:
            return None

    def belongs_to(self, account_id: int, user_id: int) -> bool:
        return self.account_id == account_id and self.user_id == user_id

    def record(self, new_events: Sequence[NewEvent]) -> Recorded:
        """Records the events in order, each seeing the session as the ones before left it, and
        each with what its side effect decided (the only time a mutator runs for it).
        An id given twice is recorded once; the caller passes only ids not already recorded."""
        notes: list[Note] = []
        seen: set[UUID] = set()
        before = (self.status, self.external_conversation_id)
        for new in new_events:
            if new.event_id in seen:
                continue
            seen.add(new.event_id)
            effect = effect_of(self, new.event_type.value, new.data_json)
            if effect.note is not None:
                notes.append(effect.note)
            self.trigger_event(
                self.EventRecorded,
                event_id=new.event_id,
                event_type=new.event_type.value,
                sent_at=new.sent_at,
                data=new.data_json,
                metadata=new.metadata_json,
                sequence=self.event_count + 1,
                changes=dict(effect.changes),
            )
        return Recorded(
            new_event_count=len(seen),
            notes=notes,
            session_changed=before != (self.status, self.external_conversation_id),
        )
