"""Group commit against a fake store: what one transaction for many calls must get right.

Calls are made to queue up behind a transaction in flight by holding the fake store's
`for_update` (its `gate`) until they have been submitted: they then form the next group."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from uuid import UUID, uuid4

import pytest

from application.errors import SessionNotFound, StoreUnavailable
from application.group_commit import GroupCommit, GroupSaved
from application.recording import EventsHandled
from application.scope import Scope
from domain.event_types import EventType
from domain.session import NewEvent, Session
from tests.factories import new_event
from tests.unit.fakes import FakeStore

OWNER = Scope(account_id=1, user_id=10)
STRANGER = Scope(account_id=2, user_id=20)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def saved() -> list[GroupSaved]:
    return []


@pytest.fixture
def committer(store: FakeStore, saved: list[GroupSaved]) -> Iterator[GroupCommit]:
    running = GroupCommit(store, sleep=lambda _: None, on_saved=saved.append)
    yield running
    running.close()


def sessions(store: FakeStore, count: int, scope: Scope = OWNER) -> list[int]:
    numbers = []
    for _ in range(count):
        number = store.next_number()
        session = Session(number=number, account_id=scope.account_id, user_id=scope.user_id)
        session.collect_events()
        store.sessions[number] = session
        numbers.append(number)
    return numbers


def holding_a_transaction(committer: GroupCommit, store: FakeStore) -> tuple[Future[EventsHandled], threading.Event]:
    """A first call whose transaction is held (in the store's `for_update`) until the gate is set."""
    blocker = sessions(store, 1)[0]
    gate = store.gate = threading.Event()
    store.entered.clear()
    first = committer.submit(OWNER, blocker, [new_event()])
    assert store.entered.wait(5)
    return first, gate


def queued_behind_a_transaction(
    committer: GroupCommit, store: FakeStore, calls: Sequence[tuple[int, Sequence[NewEvent]]], scope: Scope = OWNER
) -> tuple[Future[EventsHandled], list[Future[EventsHandled]]]:
    """A first call whose transaction is held until `calls` have all been submitted behind it."""
    first, gate = holding_a_transaction(committer, store)
    futures = [committer.submit(scope, number, events) for number, events in calls]
    gate.set()
    return first, futures


def results(futures: Sequence[Future[EventsHandled]]) -> list[EventsHandled]:
    return [f.result(timeout=5) for f in futures]


def test_calls_arriving_during_a_transaction_are_saved_together_in_the_next(
    committer: GroupCommit, store: FakeStore, saved: list[GroupSaved]
) -> None:
    a, b, c = sessions(store, 3)
    first, futures = queued_behind_a_transaction(
        committer, store, [(a, [new_event()]), (b, [new_event(), new_event()]), (c, [new_event()])]
    )
    first.result(timeout=5)
    answers = results(futures)
    assert store.groups[-1] == [(a, 1), (b, 2), (c, 1)]
    assert len(store.groups) == 2
    assert [(h.session.number, h.session.event_count, h.new_event_count) for h in answers] == [
        (a, 1, 1),
        (b, 2, 2),
        (c, 1, 1),
    ]
    assert saved[-1] == GroupSaved(calls=3, events=4, sessions=3)


def test_calls_for_one_session_in_a_group_apply_in_order_each_answered_as_its_events_left_it(
    committer: GroupCommit, store: FakeStore
) -> None:
    [number] = sessions(store, 1)
    completed = new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"})
    linked = new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "conv"})
    _, futures = queued_behind_a_transaction(committer, store, [(number, [new_event(), completed]), (number, [linked])])
    first, second = results(futures)
    assert store.groups[-1] == [(number, 3)]  # one session, both calls' events, one save
    assert (first.session.event_count, first.session.status, first.session.external_conversation_id) == (
        2,
        "complete",
        None,
    )
    assert (second.session.event_count, second.session.status, second.session.external_conversation_id) == (
        3,
        "complete",
        "conv",
    )
    history = [e for e in store.histories[number] if isinstance(e, Session.EventRecorded)]
    assert [(e.sequence, e.event_type) for e in history] == [
        (1, "tool_called"),
        (2, "session_status_changed"),
        (3, "conversation_started"),
    ]
    announced = [(a.event_count, a.session_update) for a in store.announcements if a.session_id == number]
    assert announced == [
        (2, {"status": "complete", "external_conversation_id": None}),
        (1, {"status": "complete", "external_conversation_id": "conv"}),
    ]


def test_an_id_sent_by_two_calls_of_one_group_is_recorded_once(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    event_id = uuid4()
    _, futures = queued_behind_a_transaction(
        committer,
        store,
        [
            (number, [new_event(event_id=event_id, id_from_client=True)]),
            (number, [new_event(event_id=event_id, id_from_client=True), new_event()]),
        ],
    )
    first, second = results(futures)
    assert (first.new_event_count, second.new_event_count, second.session.event_count) == (1, 1, 2)
    assert store.sessions[number].event_count == 2


def test_a_conflict_on_one_session_holds_back_only_its_own_calls(
    committer: GroupCommit, store: FakeStore, saved: list[GroupSaved]
) -> None:
    a, b, c, d = sessions(store, 4)
    store.conflicts[b] = store.conflicts[d] = 1
    _, futures = queued_behind_a_transaction(
        committer, store, [(a, [new_event()]), (b, [new_event()]), (c, [new_event()]), (d, [new_event()])]
    )
    assert [h.session.event_count for h in results(futures)] == [1, 1, 1, 1]
    # only b and d are decided and saved again, on the sessions read afresh
    assert store.groups[-2:] == [[(a, 1), (b, 1), (c, 1), (d, 1)], [(b, 1), (d, 1)]]
    assert store.loads[-2:] == [(b, True), (d, True)]
    assert [(g.calls, g.conflicts) for g in saved[-2:]] == [(4, 2), (2, 0)]


def test_a_session_gone_meanwhile_fails_its_calls_only(committer: GroupCommit, store: FakeStore) -> None:
    a, b = sessions(store, 2)
    store.gone.add(b)
    _, futures = queued_behind_a_transaction(committer, store, [(a, [new_event()]), (b, [new_event()])])
    assert futures[0].result(timeout=5).session.event_count == 1
    with pytest.raises(SessionNotFound) as missing:
        futures[1].result(timeout=5)
    assert missing.value.session_id == b


def test_a_call_for_a_foreign_or_missing_session_fails_alone(committer: GroupCommit, store: FakeStore) -> None:
    [mine] = sessions(store, 1)
    [theirs] = sessions(store, 1, STRANGER)
    _, gate = holding_a_transaction(committer, store)
    ok = committer.submit(OWNER, mine, [new_event()])
    foreign = committer.submit(OWNER, theirs, [new_event()])
    missing = committer.submit(OWNER, 999, [new_event()])
    gate.set()
    assert ok.result(timeout=5).new_event_count == 1
    for refused, number in ((foreign, theirs), (missing, 999)):
        with pytest.raises(SessionNotFound) as not_found:
            refused.result(timeout=5)
        assert not_found.value.session_id == number
    assert store.sessions[theirs].event_count == 0


def test_a_transaction_the_store_refuses_is_retried_call_by_call_so_only_the_culprit_fails(
    committer: GroupCommit, store: FakeStore
) -> None:
    a, b, c = sessions(store, 3)
    store.failing.add(b)
    _, futures = queued_behind_a_transaction(
        committer, store, [(a, [new_event()]), (b, [new_event()]), (c, [new_event()])]
    )
    assert futures[0].result(timeout=5).session.event_count == 1
    assert futures[2].result(timeout=5).session.event_count == 1
    with pytest.raises(RuntimeError, match="refused"):
        futures[1].result(timeout=5)
    assert (store.sessions[a].event_count, store.sessions[b].event_count, store.sessions[c].event_count) == (1, 0, 1)


def test_a_lone_call_the_store_refuses_fails(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    store.failing.add(number)
    with pytest.raises(RuntimeError):
        committer.submit(OWNER, number, [new_event()]).result(timeout=5)


def test_after_an_unknown_outcome_events_found_recorded_are_not_recorded_twice(
    committer: GroupCommit, store: FakeStore
) -> None:
    """The store committed, then the connection died: the retry finds the call's own (server-made)
    ids recorded and answers with them as new, without recording them again."""
    [number] = sessions(store, 1)
    store.unavailable_saves = 1
    handled = committer.submit(OWNER, number, [new_event(), new_event()]).result(timeout=5)
    assert (handled.new_event_count, handled.session.event_count) == (2, 2)
    assert store.sessions[number].event_count == 2
    assert len(store.groups) == 1  # the retry found everything recorded: nothing more to save


def test_after_an_unknown_outcome_that_did_not_commit_the_events_are_recorded(
    committer: GroupCommit, store: FakeStore
) -> None:
    [number] = sessions(store, 1)
    store.lost_saves = 1
    handled = committer.submit(OWNER, number, [new_event()]).result(timeout=5)
    assert (handled.new_event_count, store.sessions[number].event_count) == (1, 1)


def test_a_second_unknown_outcome_answers_unavailable(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    store.lost_saves = 2
    with pytest.raises(StoreUnavailable):
        committer.submit(OWNER, number, [new_event()]).result(timeout=5)
    assert store.sessions[number].event_count == 0


def test_a_store_that_cannot_be_reached_fails_the_whole_group(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    store.unavailable_loads = 1
    with pytest.raises(StoreUnavailable):
        committer.submit(OWNER, number, [new_event()]).result(timeout=5)
    assert committer.submit(OWNER, number, [new_event()]).result(timeout=5).new_event_count == 1


def test_a_call_cancelled_while_queued_is_never_recorded(committer: GroupCommit, store: FakeStore) -> None:
    a, b, c = sessions(store, 3)
    _, gate = holding_a_transaction(committer, store)
    kept = committer.submit(OWNER, a, [new_event()])
    gone = committer.submit(OWNER, b, [new_event()])
    also_kept = committer.submit(OWNER, c, [new_event()])
    assert gone.cancel()
    gate.set()
    assert (kept.result(timeout=5).new_event_count, also_kept.result(timeout=5).new_event_count) == (1, 1)
    assert store.sessions[b].event_count == 0
    assert store.groups[1:] == [[(a, 1), (c, 1)]]  # dropped from the group the others still share


def test_a_call_taken_into_a_group_can_no_longer_be_cancelled(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    gate = store.gate = threading.Event()
    store.entered.clear()
    taken = committer.submit(OWNER, number, [new_event()])
    assert store.entered.wait(5)
    assert not taken.cancel()
    gate.set()
    assert taken.result(timeout=5).new_event_count == 1


def group_sizes(store: FakeStore, calls: Sequence[tuple[int, Sequence[NewEvent]]], **bounds: int) -> list[int]:
    """How many calls each group held, `calls` having queued behind a transaction."""
    committer = GroupCommit(store, sleep=lambda _: None, **bounds)
    try:
        _, futures = queued_behind_a_transaction(committer, store, calls)
        results(futures)
    finally:
        committer.close()
    return [len(group) for group in store.groups[1:]]


@pytest.mark.parametrize(("max_group_events", "sizes"), [(3, [1, 1, 1, 1]), (4, [2, 2])])
def test_a_group_stays_within_its_bound_in_events_and_may_reach_it(
    store: FakeStore, max_group_events: int, sizes: list[int]
) -> None:
    calls = [(n, [new_event(), new_event()]) for n in sessions(store, 4)]
    assert group_sizes(store, calls, max_group_events=max_group_events) == sizes


def test_a_group_stays_within_its_bounds_in_bytes(store: FakeStore) -> None:
    calls = [(n, [new_event(data={"text": "x" * 100})]) for n in sessions(store, 3)]
    assert group_sizes(store, calls, max_group_bytes=250) == [2, 1]


def test_a_call_larger_than_the_bounds_goes_alone(store: FakeStore) -> None:
    committer = GroupCommit(store, max_group_events=2, sleep=lambda _: None)
    a, b = sessions(store, 2)
    try:
        _, futures = queued_behind_a_transaction(
            committer, store, [(a, [new_event()] * 0 + [new_event(), new_event(), new_event()]), (b, [new_event()])]
        )
        assert [h.new_event_count for h in results(futures)] == [3, 1]
    finally:
        committer.close()
    assert store.groups[1:] == [[(a, 3)], [(b, 1)]]


def test_each_call_announces_at_its_own_last_event(committer: GroupCommit, store: FakeStore) -> None:
    [number] = sessions(store, 1)
    captured: list[list[int]] = []
    original = store.save_changes

    def capture(changes):  # type: ignore[no-untyped-def]
        captured.append([a.last_version for c in changes for a in c.announced])
        return original(changes)

    store.save_changes = capture  # type: ignore[method-assign]
    _, futures = queued_behind_a_transaction(
        committer, store, [(number, [new_event(), new_event()]), (number, [new_event()])]
    )
    results(futures)
    assert captured[-1] == [3, 4]  # versions: 1 is the creation, then 2, 3 and 4


def test_closing_finishes_what_is_queued_and_refuses_more(store: FakeStore) -> None:
    committer = GroupCommit(store, sleep=lambda _: None)
    [number] = sessions(store, 1)
    futures = [committer.submit(OWNER, number, [new_event()]) for _ in range(5)]
    committer.close()
    assert [f.result(timeout=0).new_event_count for f in futures] == [1] * 5
    with pytest.raises(StoreUnavailable):
        committer.submit(OWNER, number, [new_event()])


def test_a_retried_call_whose_ids_are_recorded_answers_with_the_session_as_stored(
    committer: GroupCommit, store: FakeStore
) -> None:
    [number] = sessions(store, 1)
    event_id: UUID = uuid4()
    committer.submit(OWNER, number, [new_event(event_id=event_id, id_from_client=True)]).result(timeout=5)
    store.loads.clear()
    retry = committer.submit(OWNER, number, [new_event(event_id=event_id, id_from_client=True)]).result(timeout=5)
    assert (retry.new_event_count, retry.session.event_count) == (0, 1)
    assert store.loads == [(number, False), (number, True)]  # read afresh: another process may have moved it


def test_a_first_attempt_asks_no_question_and_the_save_catches_an_id_already_recorded(
    committer: GroupCommit, store: FakeStore
) -> None:
    [number] = sessions(store, 1)
    fresh = [new_event(id_from_client=True) for _ in range(3)]
    committer.submit(OWNER, number, fresh).result(timeout=5)
    assert store.id_queries == []  # new ids cost no read
    repeated = fresh[1]
    handled = committer.submit(OWNER, number, [repeated, new_event(id_from_client=True)]).result(timeout=5)
    assert (handled.new_event_count, handled.session.event_count) == (1, 4)
    assert store.id_queries[-1][number] >= {repeated.event_id}  # asked only once the save had refused it
    assert store.sessions[number].event_count == 4


def raising_for(monkeypatch: pytest.MonkeyPatch, marker: UUID, before: Callable[[], None] = lambda: None) -> None:
    """`Session.record` raises (a side effect failing) for the event `marker`, after recording
    the events before it: the call leaves its copy of the session half changed."""
    original = Session.record

    def record(session: Session, new_events: Sequence[NewEvent]) -> object:
        if any(e.event_id == marker for e in new_events):
            original(session, [e for e in new_events if e.event_id != marker])
            before()
            raise ValueError("a side effect failed")
        return original(session, new_events)

    monkeypatch.setattr(Session, "record", record)


def test_a_call_that_raises_while_decided_fails_alone_and_its_session_neighbours_are_saved(
    committer: GroupCommit, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    [number] = sessions(store, 1)
    marker = uuid4()
    raising_for(monkeypatch, marker)
    _, futures = queued_behind_a_transaction(
        committer,
        store,
        [
            (number, [new_event(), new_event()]),
            (number, [new_event(), new_event(event_id=marker)]),
            (number, [new_event()]),
        ],
    )
    before, failed, after = futures
    with pytest.raises(ValueError, match="side effect"):
        failed.result(timeout=5)
    assert (before.result(timeout=5).session.event_count, after.result(timeout=5).session.event_count) == (2, 3)
    assert store.groups[-1] == [(number, 3)]  # not the half-recorded event of the call that raised
    history = [e for e in store.histories[number] if isinstance(e, Session.EventRecorded)]
    assert [e.sequence for e in history] == [1, 2, 3]
    assert marker not in {e.event_id for e in history}


def test_a_call_that_raises_on_a_session_gone_meanwhile_fails_it_and_every_call_for_it(
    committer: GroupCommit, store: FakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    number, other = sessions(store, 2)
    marker = uuid4()

    def erase() -> None:
        store.gone.add(number)
        del store.sessions[number]

    raising_for(monkeypatch, marker, before=erase)
    _, futures = queued_behind_a_transaction(
        committer,
        store,
        [
            (number, [new_event()]),
            (number, [new_event(event_id=marker)]),
            (number, [new_event()]),
            (other, [new_event()]),
        ],
    )
    before, failed, after, elsewhere = futures
    with pytest.raises(ValueError):
        failed.result(timeout=5)
    for refused in (before, after):
        with pytest.raises(SessionNotFound) as not_found:
            refused.result(timeout=5)
        assert not_found.value.session_id == number
    assert elsewhere.result(timeout=5).session.event_count == 1
    assert all(number not in [n for n, _ in group] for group in store.groups[1:])


def test_a_group_whose_calls_were_all_cancelled_leaves_the_committer_running(
    committer: GroupCommit, store: FakeStore
) -> None:
    a, b = sessions(store, 2)
    _, gate = holding_a_transaction(committer, store)
    assert committer.submit(OWNER, a, [new_event()]).cancel()
    gate.set()
    assert committer.submit(OWNER, b, [new_event()]).result(timeout=5).new_event_count == 1
    assert store.sessions[a].event_count == 0


def test_a_group_may_reach_its_bound_in_bytes_exactly_counting_metadata(store: FakeStore) -> None:
    data, metadata = json.dumps({"text": "x" * 100}), json.dumps({"m": "y" * 40})
    calls = [(n, [new_event(data=data, metadata_json=metadata)]) for n in sessions(store, 5)]
    assert group_sizes(store, calls, max_group_bytes=2 * (len(data) + len(metadata))) == [2, 2, 1]


def test_a_second_unknown_outcome_answers_every_call_of_the_group_unavailable(
    committer: GroupCommit, store: FakeStore
) -> None:
    a, b = sessions(store, 2)
    store.lost_saves = 4  # the held transaction twice (it fails), then this group twice
    _, futures = queued_behind_a_transaction(
        committer, store, [(a, [new_event()]), (a, [new_event()]), (b, [new_event()])]
    )
    for future in futures:
        with pytest.raises(StoreUnavailable):
            future.result(timeout=5)


def test_a_fault_escaping_a_group_fails_its_calls_and_the_committer_goes_on(
    committer: GroupCommit, store: FakeStore
) -> None:
    """Never leave a caller waiting: whatever a group raises reaches each of its calls."""
    [number] = sessions(store, 1)
    store.faulty_loads = 1
    with pytest.raises(RuntimeError, match="a fault of the store"):
        committer.submit(OWNER, number, [new_event()]).result(timeout=5)
    assert committer.submit(OWNER, number, [new_event()]).result(timeout=5).new_event_count == 1
