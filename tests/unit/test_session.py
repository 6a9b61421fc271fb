"""The Session aggregate and its side effects (pure: no database)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from domain import side_effects
from domain.event_types import EventType
from domain.session import Session
from domain.side_effects import NO_EFFECT, Effect, SessionFacts, effect_of, link_conversation, side_effect
from domain.status import SessionStatus
from tests.factories import new_event


def replayed(session: Session) -> Session:
    copy = None
    for domain_event in session.collect_events():
        copy = domain_event.mutate(copy)
    assert isinstance(copy, Session)
    return copy


@pytest.fixture
def session() -> Session:
    return Session(number=7, account_id=1, user_id=2)


def test_a_new_session_is_active_with_no_events(session: Session) -> None:
    assert (session.status, session.external_conversation_id, session.event_count) == ("active", None, 0)
    assert session.id == Session.create_id(7)


def test_conversation_started_sets_the_conversation_when_none(session: Session) -> None:
    recorded = session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-1"})])
    assert session.external_conversation_id == "c-1"
    assert recorded.notes == []
    assert recorded.session_changed


def test_conversation_started_with_the_same_id_is_a_no_op(session: Session) -> None:
    session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-1"})])
    recorded = session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-1"})])
    assert session.external_conversation_id == "c-1"
    assert recorded.notes == [] and not recorded.session_changed
    assert session.event_count == 2


def test_a_different_conversation_is_warned_about_and_the_original_kept(session: Session) -> None:
    session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-1"})])
    recorded = session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-2"})])
    assert session.external_conversation_id == "c-1"
    assert [note.level for note in recorded.notes] == [logging.WARNING]
    assert "another conversation" in recorded.notes[0].message
    assert "c-1" not in recorded.notes[0].message and "c-2" not in recorded.notes[0].message  # event data never logged


@pytest.mark.parametrize("status", list(SessionStatus))
def test_session_status_changed_sets_the_status(session: Session, status: SessionStatus) -> None:
    session.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": status.value})])
    assert session.status == status.value


@pytest.mark.parametrize("data", [{"new_status": "exploded"}, {}, {"new_status": 3}])
def test_an_invalid_status_is_logged_and_ignored_but_the_event_recorded(session: Session, data: dict) -> None:
    recorded = session.record([new_event(EventType.SESSION_STATUS_CHANGED, data)])
    assert session.status == "active"
    assert session.event_count == 1
    assert recorded.notes[0].level == logging.WARNING


def test_error_occurred_logs_an_error_and_changes_nothing(session: Session) -> None:
    recorded = session.record([new_event(EventType.ERROR_OCCURRED, {"message": "boom"})])
    assert recorded.notes[0].level == logging.ERROR and "error_occurred" in recorded.notes[0].message
    assert "boom" not in recorded.notes[0].message  # the message is event data: stored, never logged
    assert (session.status, session.external_conversation_id) == ("active", None)


@pytest.mark.parametrize(
    "event_type",
    [
        t
        for t in EventType
        if t not in {EventType.CONVERSATION_STARTED, EventType.SESSION_STATUS_CHANGED, EventType.ERROR_OCCURRED}
    ],
)
def test_other_event_types_have_no_side_effect(event_type: EventType) -> None:
    session = Session(number=1, account_id=1, user_id=1)
    assert effect_of(session, event_type.value, '{"new_status": "failed", "conversation_id": "x"}') == NO_EFFECT


def test_a_failing_mutator_yields_an_error_note_not_an_exception(session: Session) -> None:
    recorded = session.record([new_event(EventType.CONVERSATION_STARTED, "[1]")])
    assert session.event_count == 1
    assert recorded.notes[0].level == logging.ERROR


def test_side_effects_apply_in_order_within_a_batch(session: Session) -> None:
    session.record(
        [
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "failed"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "a"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "b"}),
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"}),
        ]
    )
    assert (session.status, session.external_conversation_id, session.event_count) == ("complete", "a", 4)


def test_an_id_given_twice_in_one_call_is_recorded_once(session: Session) -> None:
    event = new_event(EventType.TOOL_CALLED)
    recorded = session.record([event, event, new_event(EventType.TOOL_RESULT)])
    assert recorded.new_event_count == 2 and session.event_count == 2


def test_replay_rebuilds_the_same_state_without_deciding_again(session: Session, caplog) -> None:
    session.record(
        [
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "a"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "b"}),
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "cancelled"}),
        ]
    )
    with caplog.at_level(logging.DEBUG):
        rebuilt = replayed(session)
    assert caplog.records == []
    assert (rebuilt.status, rebuilt.external_conversation_id, rebuilt.event_count, rebuilt.version) == (
        "cancelled",
        "a",
        3,
        session.version,
    )


def test_a_mutator_is_a_pure_function_of_session_and_data() -> None:
    class Facts:
        status = "active"
        external_conversation_id = None

    assert link_conversation(Facts(), {"conversation_id": "z"}).changes == {"external_conversation_id": "z"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tool_called", EventType.TOOL_CALLED),
        ("toolCalled", EventType.TOOL_CALLED),
        ("sessionStatusChanged", EventType.SESSION_STATUS_CHANGED),
        ("tool", None),
        ("TOOL_CALLED", None),
        ("tool-called", None),
        ("", None),
    ],
)
def test_event_types_accept_snake_and_camel_case(name: str, expected: EventType | None) -> None:
    assert EventType.parse(name) == expected


def test_each_recorded_event_keeps_what_the_client_sent(session: Session) -> None:
    sent_at = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    given = new_event(EventType.FILE_MODIFIED, '{"path": "a.py", "n": 1.0}', sent_at=sent_at, metadata_json='{"m": 2}')
    session.record([given, new_event()])
    recorded = [e for e in session.collect_events() if isinstance(e, Session.EventRecorded)]
    assert [(e.event_id, e.event_type, e.sent_at, e.data, e.metadata, e.sequence) for e in recorded[:1]] == [
        (given.event_id, "file_modified", sent_at, '{"path": "a.py", "n": 1.0}', '{"m": 2}', 1)
    ]
    assert (recorded[1].metadata, recorded[1].sequence) == (None, 2)


def test_a_failing_mutator_names_the_event_type_and_the_error(session: Session) -> None:
    recorded = session.record([new_event(EventType.SESSION_STATUS_CHANGED, "[1]")])
    assert recorded.notes[0].message == "session_status_changed side effect failed: AttributeError"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the side-effect registry, so that a test may register without leaking."""
    monkeypatch.setattr(side_effects, "_MUTATORS", dict(side_effects._MUTATORS))


@pytest.mark.usefixtures("registry")
def test_a_registered_side_effect_runs_when_its_event_is_recorded(session: Session) -> None:
    def pause(facts: SessionFacts, data: Mapping[str, Any]) -> Effect:
        return Effect(changes={"status": SessionStatus.CANCELLED.value})

    assert side_effect(EventType.SESSION_PAUSED)(pause) is pause
    session.record([new_event(EventType.SESSION_PAUSED)])
    assert session.status == "cancelled"


@pytest.mark.usefixtures("registry")
def test_an_event_type_has_at_most_one_side_effect() -> None:
    with pytest.raises(ValueError, match=r"^session_status_changed already has a side effect: <function change_status"):
        side_effect(EventType.SESSION_STATUS_CHANGED)(lambda facts, data: NO_EFFECT)
    assert side_effects._MUTATORS[EventType.SESSION_STATUS_CHANGED] is side_effects.change_status


def test_a_conversation_id_holding_a_nul_is_invalid_and_links_nothing() -> None:
    """No text column can store it (PostgreSQL refuses NUL): it is no id, so the event is kept and
    the session stays unlinked."""

    class Facts:
        status = "active"
        external_conversation_id = None

    effect = link_conversation(Facts(), {"conversation_id": "a\x00b"})
    assert effect.changes == {}
    assert effect.note is not None and "invalid conversation_id" in effect.note.message


def test_a_conversation_id_holding_a_lone_surrogate_is_invalid_and_links_nothing() -> None:
    """`"\\ud800"` in the JSON reads as a lone surrogate, which cannot be written as UTF-8: the
    event recording it could not be stored at all (a 503, found while speeding up the transcoder)."""

    class Facts:
        status = "active"
        external_conversation_id = None

    for conversation_id in ("\ud800", "ok\udc00", "\ud83d"):
        effect = link_conversation(Facts(), {"conversation_id": conversation_id})
        assert effect.changes == {}
        assert effect.note is not None and "invalid conversation_id" in effect.note.message
    assert link_conversation(Facts(), {"conversation_id": "\U0001f600"}).changes == {
        "external_conversation_id": "\U0001f600"
    }
