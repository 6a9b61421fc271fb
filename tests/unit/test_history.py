"""A history that never shifts: each event records what its side effect decided and replay only
applies it; the events 0.1.0 stored without an outcome keep the outcome 0.1.0 gave them.

Events go through the library's mapper (the store's encoding) but no database."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import Any

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import Mapper, StoredEvent

from domain import session as session_module
from domain import side_effects
from domain.event_types import EventType
from domain.session import Session
from domain.side_effects import NO_EFFECT, Effect, SessionFacts, effect_of, side_effect
from domain.side_effects_0_1_0 import changes_by_0_1_0_rules
from domain.status import SessionStatus
from tests.factories import new_event
from tests.release_0_1_0 import (
    SNAPSHOTTED,
    State,
    events_as_0_1_0_stored,
    recorded_v1_state,
    rows_0_1_0_wrote,
    session_uuid,
    snapshots_0_1_0_wrote,
    states_0_1_0_loaded,
    transcoder,
)
from tests.rules import use_other_rules

mapper: Mapper[Any] = Mapper(transcoder())


def stored(session: Session) -> list[StoredEvent]:
    """The session's new events as the store would keep them."""
    return [mapper.to_stored_event(event) for event in session.collect_events()]


def loaded(rows: Iterable[StoredEvent], session: Session | None = None) -> Session:
    """The session rebuilt from stored events (onto `session`, a copy from a snapshot or a cache)."""
    aggregate: Any = session
    for row in rows:
        aggregate = mapper.to_domain_event(row).mutate(aggregate)
    assert isinstance(aggregate, Session)
    return aggregate


def state(session: Session) -> State:
    return State(session.status, session.external_conversation_id, session.event_count, session.version)


def of_session(number: int, rows: Iterable[StoredEvent]) -> list[StoredEvent]:
    return [row for row in rows if row.originator_id == session_uuid(number)]


def recorded_under_todays_rules() -> tuple[Session, list[StoredEvent]]:
    session = Session(number=7, account_id=1, user_id=2)
    session.record(
        [
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-1"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-2"}),
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "failed"}),
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "exploded"}),
            new_event(EventType.SESSION_PAUSED, {}),
        ]
    )
    return session, stored(session)


def test_each_event_records_what_its_side_effect_decided() -> None:
    session, rows = recorded_under_todays_rules()
    recorded = [mapper.to_domain_event(row) for row in rows[1:]]
    assert [getattr(event, "changes") for event in recorded] == [  # noqa: B009
        {"external_conversation_id": "c-1"},
        {},
        {"status": "failed"},
        {},
        {},
    ]
    assert state(loaded(rows)) == state(session) == State("failed", "c-1", 5, 6)


def test_an_event_is_stored_with_its_class_version_and_its_changes() -> None:
    session = Session(number=7, account_id=1, user_id=2)
    session.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"})])
    started, recorded = session.collect_events()
    row = mapper.to_stored_event(recorded)
    assert row.topic == "domain.session:Session.EventRecorded"
    state_stored = json.loads(row.state)
    assert (state_stored["class_version"], state_stored["changes"]) == (2, {"status": "complete"})
    assert mapper.to_domain_event(row) == recorded
    assert "class_version" not in json.loads(mapper.to_stored_event(started).state)  # version 1 is implied


def test_a_changed_rule_does_not_change_sessions_recorded_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    session, rows = recorded_under_todays_rules()
    use_other_rules(monkeypatch)
    assert state(loaded(rows)) == state(session) == State("failed", "c-1", 5, 6)


def test_a_changed_rule_applies_to_events_recorded_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _, rows = recorded_under_todays_rules()
    monkeypatch.setattr(side_effects, "_MUTATORS", {})
    rebuilt = loaded(rows)
    rebuilt.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"})])
    assert rebuilt.status == "failed"  # no rule any more: the new event changes nothing
    assert loaded(rows + stored(rebuilt)).status == "failed"


def test_events_recorded_under_a_new_rule_keep_its_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    use_other_rules(monkeypatch)
    session = Session(number=7, account_id=1, user_id=2)
    session.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"})])
    assert session.status == "cancelled"
    rows = stored(session)
    monkeypatch.undo()
    assert loaded(rows).status == "cancelled"


def test_replay_runs_no_side_effect(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    session, rows = recorded_under_todays_rules()

    def must_not_run(*args: object) -> Effect:
        raise AssertionError("a mutator ran on replay")

    monkeypatch.setattr(session_module, "effect_of", must_not_run)
    with caplog.at_level(logging.DEBUG):
        assert state(loaded(rows)) == state(session)
    assert caplog.records == []


def test_the_state_is_the_same_from_history_a_snapshot_or_a_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    session, rows = recorded_under_todays_rules()
    snapshot = mapper.to_stored_event(Session.Snapshot.take(session))
    cached = deepcopy(session)
    session.record(
        [
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-3"}),
        ]
    )
    later = stored(session)
    expected = state(session)
    assert expected == State("complete", "c-1", 7, 8)

    monkeypatch.setattr(side_effects, "_MUTATORS", {})  # every rule gone
    from_history = loaded(rows + later)
    snapshot_event = mapper.to_domain_event(snapshot)
    assert isinstance(snapshot_event, Session.Snapshot)
    from_snapshot = loaded(later, snapshot_event.mutate(None))
    from_cache = loaded(later, cached)
    assert state(from_history) == state(from_snapshot) == state(from_cache) == expected


@pytest.mark.usefixtures("registry")
def test_a_new_side_effect_does_not_reinterpret_events_recorded_before_it() -> None:
    session, rows = recorded_under_todays_rules()

    @side_effect(EventType.SESSION_PAUSED)
    def pause_fails(facts: SessionFacts, data: Mapping[str, Any]) -> Effect:
        return Effect(changes={"status": SessionStatus.CANCELLED.value})

    assert loaded(rows).status == "failed"
    session.record([new_event(EventType.SESSION_PAUSED, {})])
    assert session.status == "cancelled"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(side_effects, "_MUTATORS", dict(side_effects._MUTATORS))


# What a side effect may record.


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"event_count": 3},
            "ValueError(\"changes 'event_count', which is not one of ['external_conversation_id', 'status']\")",
        ),
        ({"account_id": 9}, "ValueError(\"changes 'account_id'"),
        (
            {"status": SessionStatus.FAILED},
            "TypeError(\"sets 'status' to a SessionStatus, which is not a JSON scalar\")",
        ),
        ({"status": {"failed"}}, "TypeError(\"sets 'status' to a set"),
        ({"status": ["failed"]}, "TypeError(\"sets 'status' to a list"),
    ],
)
def test_a_side_effect_records_only_json_scalars_of_the_session_facts(changes: dict[str, Any], error: str) -> None:
    side_effect(EventType.SESSION_PAUSED)(lambda facts, data: Effect(changes=changes))
    session = Session(number=7, account_id=1, user_id=2)
    recorded = session.record([new_event(EventType.SESSION_PAUSED, {})])
    assert (session.status, session.event_count, session.account_id) == ("active", 1, 1)
    assert [note.level for note in recorded.notes] == [logging.ERROR]
    assert recorded.notes[0].message.startswith(f"session_paused side effect failed: {error}")
    assert getattr(session.collect_events()[-1], "changes") == {}  # noqa: B009


@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize("value", ["x", 1, 1.5, True, None])
def test_json_scalars_may_be_recorded(value: object) -> None:
    side_effect(EventType.SESSION_PAUSED)(lambda facts, data: Effect(changes={"external_conversation_id": value}))
    effect = effect_of(Session(number=7, account_id=1, user_id=2), "session_paused", "{}")
    assert effect == Effect(changes={"external_conversation_id": value})


# What 0.1.0 stored.


def test_the_refilled_rows_have_the_shape_0_1_0_wrote() -> None:
    recorded = [row for row in rows_0_1_0_wrote() if row.topic == "domain.session:Session.EventRecorded"]
    assert len(recorded) == 14
    for row in recorded:
        fields = transcoder().decode(row.state)
        assert recorded_v1_state(**fields) == row.state


def test_0_1_0_stored_its_events_without_outcome_or_version() -> None:
    for row in events_as_0_1_0_stored():
        fields = json.loads(row.state)
        assert "class_version" not in fields and "changes" not in fields
        event = mapper.to_domain_event(row)
        if isinstance(event, Session.EventRecorded):
            assert event.changes is None  # upcast: "the outcome the 0.1.0 rules give"
            assert (event.event_type, event.data, event.sequence) == (
                fields["event_type"],
                fields["data"],
                row.originator_version - 1,
            )
        else:
            assert isinstance(event, Session.Started)


def test_the_0_1_0_rows_hold_what_their_sessions_were_sent() -> None:
    first = [mapper.to_domain_event(row) for row in of_session(1, rows_0_1_0_wrote())][1:]
    assert [(getattr(e, "event_type"), getattr(e, "data"), getattr(e, "metadata")) for e in first[2:5]] == [  # noqa: B009
        ("session_status_changed", '{"new_status": "failed"}', '{"client": "ide"}'),
        ("session_status_changed", '{"new_status": "exploded"}', None),
        ("tool_called", '{"tool_name": "Read", "note": "café ✓"}', None),
    ]


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_0_1_0_sessions_load_to_the_state_0_1_0_gave_them(number: int) -> None:
    assert state(loaded(of_session(number, events_as_0_1_0_stored()))) == states_0_1_0_loaded()[number]


@pytest.mark.parametrize("number", [1, 2, 3, 4])
def test_0_1_0_sessions_do_not_shift_when_todays_rules_change(number: int, monkeypatch: pytest.MonkeyPatch) -> None:
    use_other_rules(monkeypatch)
    assert state(loaded(of_session(number, events_as_0_1_0_stored()))) == states_0_1_0_loaded()[number]


def test_a_snapshot_0_1_0_took_loads_to_the_state_0_1_0_gave_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_other_rules(monkeypatch)
    (row,) = snapshots_0_1_0_wrote()
    assert (row.originator_id, row.originator_version) == (session_uuid(SNAPSHOTTED), 1002)
    snapshot = mapper.to_domain_event(row)
    assert isinstance(snapshot, Session.Snapshot)
    taken = snapshot.mutate(None)
    assert isinstance(taken, Session)
    assert state(taken) == State("failed", None, 1001, 1002)
    later = [r for r in of_session(SNAPSHOTTED, events_as_0_1_0_stored()) if r.originator_version > 1002]
    from_snapshot = loaded(later, taken)
    assert state(from_snapshot) == states_0_1_0_loaded()[SNAPSHOTTED]
    assert vars(from_snapshot) == vars(loaded(of_session(SNAPSHOTTED, events_as_0_1_0_stored())))


def test_a_0_1_0_session_records_new_events_with_their_outcome() -> None:
    rows = of_session(1, events_as_0_1_0_stored())
    session = loaded(rows)
    session.record(
        [
            new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "active"}),
            new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c-9"}),
        ]
    )
    new_rows = stored(session)
    assert [getattr(mapper.to_domain_event(r), "changes") for r in new_rows] == [{"status": "active"}, {}]  # noqa: B009
    assert state(loaded(rows + new_rows)) == State("active", "c-1", 8, 9)


# The frozen copy of the 0.1.0 rules: its outcomes, pinned.


class Facts:
    def __init__(self, status: str = "active", external_conversation_id: str | None = None) -> None:
        self.status = status
        self.external_conversation_id = external_conversation_id


@pytest.mark.parametrize(
    ("facts", "event_type", "data", "changes"),
    [
        (Facts(), "conversation_started", '{"conversation_id": "c"}', {"external_conversation_id": "c"}),
        (Facts(), "conversation_started", '{"conversation_id": 42}', {"external_conversation_id": "42"}),
        (Facts(), "conversation_started", '{"conversation_id": -1}', {"external_conversation_id": "-1"}),
        (Facts(), "conversation_started", '{"conversation_id": true}', {}),
        (Facts(), "conversation_started", '{"conversation_id": ""}', {}),
        (Facts(), "conversation_started", '{"conversation_id": 1.5}', {}),
        (Facts(), "conversation_started", '{"conversation_id": ["c"]}', {}),
        (Facts(), "conversation_started", '{"conversation_id": null}', {}),
        (Facts(), "conversation_started", "{}", {}),
        (Facts(external_conversation_id="a"), "conversation_started", '{"conversation_id": "b"}', {}),
        (Facts(external_conversation_id="a"), "conversation_started", '{"conversation_id": "a"}', {}),
        (Facts(), "session_status_changed", '{"new_status": "active"}', {"status": "active"}),
        (Facts(), "session_status_changed", '{"new_status": "complete"}', {"status": "complete"}),
        (Facts(), "session_status_changed", '{"new_status": "failed"}', {"status": "failed"}),
        (Facts(), "session_status_changed", '{"new_status": "cancelled"}', {"status": "cancelled"}),
        (Facts("failed"), "session_status_changed", '{"new_status": "failed"}', {"status": "failed"}),
        (Facts(), "session_status_changed", '{"new_status": "Complete"}', {}),
        (Facts(), "session_status_changed", '{"new_status": "paused"}', {}),
        (Facts(), "session_status_changed", '{"new_status": 3}', {}),
        (Facts(), "session_status_changed", '{"new_status": ["failed"]}', {}),
        (Facts(), "session_status_changed", "{}", {}),
        (Facts(), "session_status_changed", "[1]", {}),
        (Facts(), "session_status_changed", "not json", {}),
        (Facts(), "error_occurred", '{"message": "boom"}', {}),
        (Facts(), "session_paused", '{"new_status": "failed"}', {}),
        (Facts(), "tool_called", '{"conversation_id": "c"}', {}),
        (Facts(), "an_unknown_type", '{"new_status": "failed"}', {}),
    ],
)
def test_the_0_1_0_rules(facts: Facts, event_type: str, data: str, changes: dict[str, str]) -> None:
    assert changes_by_0_1_0_rules(facts, event_type, data) == changes


# Every stored shape carries a version.

VERSIONS = {Session: 1, Session.Started: 1, Session.EventRecorded: 2, Session.Erased: 1}
"""Raise one only together with an upcaster from the version before (docs/changing-an-event.md)."""


def test_every_stored_class_declares_its_version_and_has_its_upcasters() -> None:
    stored_classes = {
        value
        for name, value in vars(Session).items()
        if isinstance(value, type) and issubclass(value, CanMutateAggregate) and name not in ("Event", "Created")
    }
    assert stored_classes | {Session} == set(VERSIONS)
    for cls, version in VERSIONS.items():
        declared = [k for k in cls.__mro__ if k.__module__ == "domain.session" and "class_version" in vars(k)]
        assert declared, f"{cls.__qualname__} declares no class_version"
        assert cls.class_version == version  # type: ignore[attr-defined]
        for older in range(1, version):
            assert callable(getattr(cls, f"upcast_v{older}_v{older + 1}"))


def test_the_library_bases_are_never_stored() -> None:
    session = Session(number=7, account_id=1, user_id=2)
    session.record([new_event()])
    assert [type(event) for event in session.collect_events()] == [Session.Started, Session.EventRecorded]
    assert not issubclass(Session.Started, Session.Created) and issubclass(Session.Started, Aggregate.Created)


def test_no_effect_is_recorded_as_no_changes() -> None:
    session = Session(number=7, account_id=1, user_id=2)
    session.record([new_event(EventType.TOOL_CALLED, {"new_status": "failed"})])
    assert getattr(session.collect_events()[-1], "changes") == dict(NO_EFFECT.changes) == {}  # noqa: B009


def test_a_tombstone_ends_the_session_whose_history_it_follows() -> None:
    session = Session(number=7, account_id=1, user_id=2)
    session.record([new_event(), new_event()])
    history = session.collect_events()
    tombstone = Session.Erased.of(7, last_version=history[-1].originator_version)
    assert (tombstone.originator_id, tombstone.originator_version, tombstone.number) == (session.id, 4, 7)
    replayed: Session | None = None
    for event in [*history, tombstone]:
        replayed = event.mutate(replayed)
    assert replayed is None  # loads as not found, from its history or from a cached copy alike
    assert tombstone.mutate(None) is None  # and alone, its history deleted


def test_a_tombstone_stores_nothing_but_the_session_number() -> None:
    tombstone = Session.Erased.of(7, last_version=3)
    assert set(vars(tombstone)) == {"originator_id", "originator_version", "timestamp", "number"}
