"""Side-effect rules that decide differently from today's, as a later release might: a test
swaps them in to check that the sessions recorded before never shift."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from domain import side_effects
from domain.event_types import EventType
from domain.side_effects import Effect, SessionFacts
from domain.status import SessionStatus


def always_cancel(facts: SessionFacts, data: Mapping[str, Any]) -> Effect:
    return Effect(changes={"status": SessionStatus.CANCELLED.value})


def always_relink(facts: SessionFacts, data: Mapping[str, Any]) -> Effect:
    return Effect(changes={"external_conversation_id": "other"})


def pause_fails(facts: SessionFacts, data: Mapping[str, Any]) -> Effect:
    return Effect(changes={"status": SessionStatus.FAILED.value})


def use_other_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now until the test ends: every status change cancels, every conversation_started
    relinks to "other", and session_paused (no side effect today) fails the session."""
    monkeypatch.setattr(
        side_effects,
        "_MUTATORS",
        {
            EventType.SESSION_STATUS_CHANGED: always_cancel,
            EventType.CONVERSATION_STARTED: always_relink,
            EventType.SESSION_PAUSED: pause_fails,
        },
    )
