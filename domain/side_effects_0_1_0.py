"""The side-effect rules of release 0.1.0, frozen: the outcome of events 0.1.0 recorded.

0.1.0 stored each `Session.EventRecorded` without its outcome (the event's class version 1) and
worked the outcome out again, with the mutators of the day, whenever a session was loaded. Those
events stay in the log for good, and their sessions must load to the state 0.1.0 gave them, not
to whatever today's mutators would make of them. So their outcome is worked out here, by a copy of
the 0.1.0 rules that nothing else uses (see docs/adr/0009-recorded-outcomes-and-upcasting.md).

**Never edit this module to change a rule.** It is the meaning of events already stored, not a
rule of today: change `domain/side_effects.py`, which applies to events recorded from then on.
It depends on nothing that may change (not `EventType`, not `SessionStatus`, not the registry):
the event types and statuses are the strings 0.1.0 stored. Only the changes are kept; the notes
were logged by 0.1.0 when the events were recorded. Where 0.1.0 answered "no effect" for a
change that would set a value the session already had, the copy may set it: the state is the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol


class SessionFacts010(Protocol):
    """What the 0.1.0 rules read of the session."""

    @property
    def status(self) -> str: ...

    @property
    def external_conversation_id(self) -> str | None: ...


def changes_by_0_1_0_rules(session: SessionFacts010, event_type: str, data_json: str) -> dict[str, str]:
    """The session attributes 0.1.0 set when it applied this event to `session`."""
    rule = _RULES.get(event_type)
    if rule is None:
        return {}
    try:
        return rule(session, json.loads(data_json))
    except Exception:  # 0.1.0 turned a failing mutator into a logged error and no change
        return {}


def _link_conversation(session: SessionFacts010, data: Mapping[str, Any]) -> dict[str, str]:
    conversation_id = data.get("conversation_id")
    if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
        conversation_id = str(conversation_id)
    if not isinstance(conversation_id, str) or not conversation_id:
        return {}
    if session.external_conversation_id is not None:
        return {}
    return {"external_conversation_id": conversation_id}


_STATUSES = frozenset({"active", "complete", "failed", "cancelled"})


def _change_status(session: SessionFacts010, data: Mapping[str, Any]) -> dict[str, str]:
    new_status = data.get("new_status")
    if not isinstance(new_status, str) or new_status not in _STATUSES:
        return {}
    return {"status": new_status}


_RULES: dict[str, Callable[[SessionFacts010, Mapping[str, Any]], dict[str, str]]] = {
    "conversation_started": _link_conversation,
    "session_status_changed": _change_status,
}
