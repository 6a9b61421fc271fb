"""Side effects: how recording an event changes its session.

Each side effect is a *mutator*: a pure function of the session as it stands and the event's
`data`, returning the `Effect` to apply. It runs once, when the event is recorded, and the event
records the changes it decided (`Session.EventRecorded.changes`): replay applies those, and never
runs a mutator again. So a mutator added or changed later applies to events recorded from then
on, and the past stays as it was recorded (docs/adr/0009-recorded-outcomes-and-upcasting.md).
A mutator must not log or call out (a command may be decided more than once when writers race):
what it wants said (a warning, an error) goes in `Effect.note`, which the use case logs once,
after the save.

To add a side effect, write one function here decorated with `@side_effect(EventType.X)` and
one test (see docs/adding-a-side-effect.md). Nothing else needs to change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.event_types import EventType
from domain.status import SessionStatus


class SessionFacts(Protocol):
    """What a mutator may read of the session it changes."""

    @property
    def status(self) -> str: ...

    @property
    def external_conversation_id(self) -> str | None: ...


@dataclass(frozen=True)
class Note:
    """Something worth telling an operator, logged when the command is decided."""

    level: int
    message: str


@dataclass(frozen=True)
class Effect:
    """The session attributes an event changes, and what is worth logging about it."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    note: Note | None = None


NO_EFFECT = Effect()

Mutator = Callable[[SessionFacts, Mapping[str, Any]], Effect]
_MUTATORS: dict[EventType, Mutator] = {}


def side_effect(event_type: EventType) -> Callable[[Mutator], Mutator]:
    """Registers the mutator that runs when an event of this type is recorded."""

    def register(mutator: Mutator) -> Mutator:
        if event_type in _MUTATORS:
            raise ValueError(f"{event_type} already has a side effect: {_MUTATORS[event_type]}")
        _MUTATORS[event_type] = mutator
        return mutator

    return register


CHANGEABLE = frozenset({"status", "external_conversation_id"})
"""The session attributes a side effect may change (those of `SessionFacts`)."""

_JSON_SCALARS = (str, int, float, bool, type(None))


def effect_of(session: SessionFacts, event_type: str, data_json: str) -> Effect:
    """The effect of recording one event. A mutator that fails yields a logged error and no
    change: malformed client data must never stop an event from being recorded. Its changes are
    recorded in the event for good, so they must name attributes in `CHANGEABLE` and be JSON
    scalars (they must come back from the store as they went in); anything else is a failure."""
    mutator = _MUTATORS.get(EventType(event_type))
    if mutator is None:
        return NO_EFFECT
    try:
        effect = mutator(session, json.loads(data_json))
    except Exception as error:
        # The error's type only: its message may quote the event's data, which never reaches the logs.
        return Effect(note=Note(logging.ERROR, f"{event_type} side effect failed: {type(error).__name__}"))
    try:
        _check_recordable(effect.changes)
    except (TypeError, ValueError) as error:  # the mutator's own mistake, named without event data
        return Effect(note=Note(logging.ERROR, f"{event_type} side effect failed: {error!r}"))
    return effect


def _check_recordable(changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        if name not in CHANGEABLE:
            raise ValueError(f"changes {name!r}, which is not one of {sorted(CHANGEABLE)}")
        if type(value) not in _JSON_SCALARS:
            raise TypeError(f"sets {name!r} to a {type(value).__name__}, which is not a JSON scalar")


@side_effect(EventType.CONVERSATION_STARTED)
def link_conversation(session: SessionFacts, data: Mapping[str, Any]) -> Effect:
    conversation_id = data.get("conversation_id")
    if conversation_id is None:
        return Effect(note=Note(logging.WARNING, "conversation_started without conversation_id"))
    if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
        conversation_id = str(conversation_id)
    # A NUL character cannot be stored in a text column (PostgreSQL refuses it), nor can a lone
    # surrogate (`"\ud800"` in the JSON) be written as UTF-8 at all: neither is an id.
    if not isinstance(conversation_id, str) or not conversation_id or not _storable(conversation_id):
        kind = type(conversation_id).__name__
        return Effect(note=Note(logging.WARNING, f"conversation_started ignored: invalid conversation_id (a {kind})"))
    if session.external_conversation_id is None:
        return Effect(changes={"external_conversation_id": conversation_id})
    if session.external_conversation_id == conversation_id:
        return NO_EFFECT
    return Effect(
        note=Note(logging.WARNING, "conversation_started ignored: the session already belongs to another conversation")
    )


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_STATUSES = {status.value: status for status in SessionStatus}


@side_effect(EventType.SESSION_STATUS_CHANGED)
def change_status(session: SessionFacts, data: Mapping[str, Any]) -> Effect:
    new_status = data.get("new_status")
    status = _STATUSES.get(new_status) if isinstance(new_status, str) else None
    if status is None:
        accepted = ", ".join(_STATUSES)
        message = f"session_status_changed ignored: new_status is not one of {accepted}"
        return Effect(note=Note(logging.WARNING, message))
    if status == session.status:
        return NO_EFFECT
    return Effect(changes={"status": status.value})


@side_effect(EventType.ERROR_OCCURRED)
def report_error(session: SessionFacts, data: Mapping[str, Any]) -> Effect:
    """The error's message is event data: it is stored (and counted in the stats), never logged."""
    return Effect(note=Note(logging.ERROR, "client reported an error (error_occurred)"))
