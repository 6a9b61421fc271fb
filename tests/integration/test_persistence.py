"""Persistence behaviour through the real stores: SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.eventstore.log import SNAPSHOT_INTERVAL
from adapters.readmodel.projection import ProjectionConflict, Projector
from adapters.readmodel.session_events import SessionEvents
from application.errors import EventRejected, SessionNotFound
from application.queries import EventQuery, Order, Page
from application.scope import Scope
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import STORES, settings_for
from tests.factories import raw_event
from tests.integration.stepping import stepped_service


def all_events(service: Service, scope: Scope, number: int, order: Order = Order.ASC):
    return service.sessions.get_events(scope, number, EventQuery(limit=1000, order=order))


def test_a_session_and_its_events_persist_and_read_back(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    handled = service.sessions.handle_events(
        scope,
        number,
        [
            raw_event(event_type="conversation_started", data={"conversation_id": "c-9"}),
            raw_event(event_type="session_status_changed", data={"new_status": "complete"}, metadata={"m": 1}),
        ],
    )
    assert handled.new_event_count == 2
    again = service.sessions.get_session(scope, number)
    assert (again.status, again.external_conversation_id, again.event_count) == ("complete", "c-9", 2)
    events = all_events(service, scope, number)
    assert [(e.sequence, e.event_type, e.session_id) for e in events] == [
        (1, "conversation_started", number),
        (2, "session_status_changed", number),
    ]
    assert events[1].metadata_json == '{"m": 1}'


def test_session_ids_are_positive_and_distinct(service: Service, scope: Scope) -> None:
    numbers = [service.sessions.create_session(scope).number for _ in range(5)]
    assert len(set(numbers)) == 5 and min(numbers) > 0
    listed = [s.number for s in service.sessions.list_sessions(scope, Page(limit=10))]
    assert listed == sorted(numbers, reverse=True)


def test_a_session_in_another_scope_is_not_found(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    with pytest.raises(SessionNotFound):
        service.sessions.get_events(Scope(scope.account_id, scope.user_id + 100), number, EventQuery())
    with pytest.raises(SessionNotFound):
        service.sessions.get_session(scope, 10**12)


def test_an_invalid_batch_stores_nothing(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    with pytest.raises(EventRejected):
        service.sessions.handle_events(scope, number, [raw_event(), raw_event(), raw_event(data=[1])])
    assert service.sessions.get_session(scope, number).event_count == 0
    assert all_events(service, scope, number) == []


def test_retried_ids_are_recorded_once(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    ids = [str(uuid4()) for _ in range(5)]
    first = service.sessions.handle_events(scope, number, [raw_event(id=i) for i in ids[:3]])
    retry = service.sessions.handle_events(scope, number, [raw_event(id=i) for i in ids])
    assert (first.new_event_count, retry.new_event_count, retry.session.event_count) == (3, 2, 5)
    assert sorted(str(e.event_id) for e in all_events(service, scope, number)) == sorted(ids)


def test_concurrent_writers_to_one_session_all_succeed(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    errors: list[BaseException] = []
    retried_id = str(uuid4())

    def write(worker: int) -> None:
        try:
            for k in range(10):
                service.sessions.handle_events(scope, number, [raw_event(data={"w": worker, "k": k}) for _ in range(3)])
                service.sessions.handle_event(scope, number, raw_event(id=retried_id))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    session = service.sessions.get_session(scope, number)
    assert session.event_count == 6 * 10 * 3 + 1
    events = all_events(service, scope, number)
    assert sorted(e.sequence for e in events) == list(range(1, session.event_count + 1))
    assert sum(str(e.event_id) == retried_id for e in events) == 1


def test_paging_is_stable_and_desc_is_the_exact_reverse(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    base = datetime(2026, 5, 1, tzinfo=UTC)
    # Many ties on sent_at, and arrival order different from time order.
    batch = [raw_event(sent_at=(base + timedelta(seconds=(k * 7) % 5)).isoformat()) for k in range(40)]
    service.sessions.handle_events(scope, number, batch)
    asc = all_events(service, scope, number)
    desc = all_events(service, scope, number, Order.DESC)
    assert [e.sequence for e in desc] == [e.sequence for e in reversed(asc)]
    assert [(e.sent_at, e.sequence) for e in asc] == sorted((e.sent_at, e.sequence) for e in asc)
    for order, full in ((Order.ASC, asc), (Order.DESC, desc)):
        paged = []
        for offset in range(0, 40, 7):
            paged += service.sessions.get_events(scope, number, EventQuery(limit=7, offset=offset, order=order))
        assert [e.sequence for e in paged] == [e.sequence for e in full]


def test_event_type_filter(service: Service, scope: Scope) -> None:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(scope, number, [raw_event(), raw_event(event_type="file_created"), raw_event()])
    found = service.sessions.get_events(scope, number, EventQuery.parse(event_type="fileCreated"))
    assert [e.sequence for e in found] == [2]


def test_a_cold_process_sees_every_write_and_appends_after_snapshots(
    service: Service, scope: Scope, database_url: str
) -> None:
    """A second service on the same store (as another worker process would be) loads sessions
    from snapshot plus tail, and both processes keep appending without loss."""
    number = service.sessions.create_session(scope).number
    for _ in range(3):
        service.sessions.handle_events(scope, number, [raw_event() for _ in range(SNAPSHOT_INTERVAL // 2 + 1)])
    other = bootstrap(settings_for(database_url), run_projection=False)
    try:
        assert other.sessions.get_session(scope, number).event_count == 3 * (SNAPSHOT_INTERVAL // 2 + 1)
        other.sessions.handle_event(
            scope, number, raw_event(event_type="session_status_changed", data={"new_status": "failed"})
        )
        again = service.sessions.handle_event(scope, number, raw_event())
        assert again.session.event_count == 3 * (SNAPSHOT_INTERVAL // 2 + 1) + 2
        assert again.session.status == "failed"
    finally:
        other.close()


def test_the_projection_never_applies_a_batch_twice(service: Service, scope: Scope, database_url: str) -> None:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(scope, number, [raw_event() for _ in range(25)])
    rival = bootstrap(settings_for(database_url), run_projection=False)
    try:
        rival.projection.catch_up()  # races the running worker: a conflict means carrying on from its position
    finally:
        rival.close()
    events = all_events(service, scope, number)
    assert [e.sequence for e in events] == list(range(1, 26))


def test_a_projector_that_read_a_stale_position_gives_up_its_batch(
    service: Service, scope: Scope, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compare-and-set: a batch is applied only if the position is still the one it was read at.
    Here the rival's batch is a session's creation, which writes no row that could collide: only
    the compare-and-set stops it from moving the position back behind rows already written."""
    rival = bootstrap(settings_for(database_url), run_projection=False)
    try:
        stale = rival.projection.head()
        number = service.sessions.create_session(scope).number  # the next log entry: no event row
        service.sessions.handle_events(scope, number, [raw_event() for _ in range(3)])
        assert len(all_events(service, scope, number)) == 3  # the running projector has passed both
        reached = service.projection.position()
        assert reached > stale + 1

        rival.projection.batch_size = 1
        monkeypatch.setattr(rival.projection, "_start", lambda: stale)  # read before the running one moved
        with pytest.raises(ProjectionConflict):
            rival.projection.process_batch()
        assert service.projection.position() == reached
        assert [e.sequence for e in all_events(service, scope, number)] == [1, 2, 3]
    finally:
        rival.close()


@pytest.mark.parametrize("kind", STORES)
def test_a_projector_goes_on_from_its_own_commit_until_another_moves_the_position(
    kind: str, tmp_path: Path, scope: Scope
) -> None:
    """After its own commit a projector starts the next batch where it moved the position,
    without reading it; a rival's move makes that batch conflict (nothing written), and the next
    one starts from the tracked position. `catch_up()` always starts from the tracked position,
    whoever set it (a benchmark resetting a read model)."""
    with stepped_service(kind, tmp_path) as stepped:
        service = stepped.service
        number = service.sessions.create_session(scope).number
        service.sessions.handle_events(scope, number, [raw_event() for _ in range(4)])  # log: creation, 4 events
        mine = service.projection
        rival = Projector(SessionEvents(), service.log, service.database)  # another process's, same name
        mine.batch_size = rival.batch_size = 2

        def sequences() -> list[int]:
            return [e.sequence for e in all_events(service, scope, number)]

        assert mine.process_batch() == 2  # the creation, event 1
        assert rival.process_batch() == 2  # events 2 and 3, from the tracked position
        with pytest.raises(ProjectionConflict):
            mine.process_batch()  # from its own commit: stale
        assert mine.process_batch() == 1  # event 4, from the tracked position
        assert sequences() == [1, 2, 3, 4]

        db = service.database
        with db.transaction(commit=True) as cursor:
            cursor.execute("DELETE FROM session_events")
            cursor.execute(db.statement("UPDATE projection_tracking SET position = 0 WHERE name = %s"), (mine.name,))
        mine.catch_up()
        assert sequences() == [1, 2, 3, 4]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(
    st.text(max_size=10) | st.sampled_from(["_type_", "_data_", "__class__", "id", ""]), json_values, max_size=6
)


def kinds(value: object) -> object:
    """The value with every number's kind made explicit: 1 and 1.0 differ."""
    if isinstance(value, dict):
        return {k: kinds(v) for k, v in value.items()}
    if isinstance(value, list):
        return [kinds(v) for v in value]
    return (type(value).__name__, value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=json_objects)
def test_any_json_object_round_trips_exactly(service: Service, scope: Scope, data: dict) -> None:
    number = service.sessions.create_session(scope).number
    text = json.dumps(data)
    service.sessions.handle_event(scope, number, raw_event(data=text.encode(), metadata=text.encode()))
    [stored] = all_events(service, scope, number)
    assert stored.data_json == text and stored.metadata_json == text
    assert kinds(json.loads(stored.data_json)) == kinds(data)


def test_large_but_legal_writes_go_through(service: Service, scope: Scope) -> None:
    """A 9 MB batch and a 6 MB event (psycopg's pipeline mode once wedged on such sizes)."""
    number = service.sessions.create_session(scope).number
    blob = json.dumps({"blob": "x" * 9000}).encode()
    batch = [raw_event(data=blob) for _ in range(1000)]
    assert service.sessions.handle_events(scope, number, batch).new_event_count == 1000
    big = raw_event(data={"blob": "y" * 6_000_000})
    assert service.sessions.handle_event(scope, number, big).session.event_count == 1001
    assert len(service.sessions.get_events(scope, number, EventQuery(limit=1000))) == 1000


def test_sessions_are_found_by_their_conversation(service: Service, scope: Scope) -> None:
    first, second, other = (service.sessions.create_session(scope) for _ in range(3))
    for session, conversation in ((first, "conv-a"), (second, "conv-a"), (other, "conv-b")):
        started = raw_event(event_type="conversation_started", data={"conversation_id": conversation})
        service.sessions.handle_events(scope, session.number, [started])
    # A later, different conversation_started does not relink a session (the first one wins).
    relink = raw_event(event_type="conversation_started", data={"conversation_id": "conv-a"})
    service.sessions.handle_event(scope, other.number, relink)
    found = service.sessions.list_sessions(scope, Page(), conversation_id="conv-a")
    assert [s.number for s in found] == [second.number, first.number]
    assert [s.number for s in service.sessions.list_sessions(scope, Page(limit=1), "conv-a")] == [second.number]
    assert service.sessions.list_sessions(scope, Page(), conversation_id="conv-none") == []
    stranger = Scope(scope.account_id, scope.user_id + 1)
    assert service.sessions.list_sessions(stranger, Page(), conversation_id="conv-a") == []


def test_the_projector_learns_session_numbers_from_the_log(
    service: Service, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session created in the batch being projected needs no directory lookup: its `Started`
    event carries its number."""
    fresh = bootstrap(settings_for(database_url), run_projection=False)
    try:
        scope = Scope(77, 78)
        number = fresh.sessions.create_session(scope).number
        fresh.sessions.handle_events(scope, number, [raw_event() for _ in range(3)])
        projector = fresh.projectors["session_events"]
        start = projector.head() - 4  # the session's creation and its three events
        looked_up: list[object] = []
        monkeypatch.setattr(fresh.database, "session_numbers_of", lambda uuids: looked_up.append(uuids) or {})
        batch, _ = projector.read_log(start, 10)
        assert [e.session_number for e in batch] == [number] * 4
        assert looked_up == []
    finally:
        fresh.close()


def test_an_event_whose_conversation_id_no_text_can_hold_is_stored_and_links_nothing(
    service: Service, scope: Scope
) -> None:
    number = service.sessions.create_session(scope).number
    started = raw_event(event_type="conversation_started", data=b'{"conversation_id": "\\ud800", "x": "\\udc00"}')
    handled = service.sessions.handle_event(scope, number, started)
    assert (handled.new_event_count, handled.session.external_conversation_id) == (1, None)
    [event] = all_events(service, scope, number)
    assert event.data_json == '{"conversation_id": "\\ud800", "x": "\\udc00"}'
