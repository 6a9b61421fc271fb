"""The projections' reader of the log, on each store: every event it gives a read model is the
one the library gives (its own `select_notifications` and mapper), at the same position, for a
log holding 0.1.0's rows, today's events of every type and shape, and an event class the read
models do not know; the fast decoding is taken for today's `EventRecorded` rows and the mapper
for everything else; reading in batches gives the same as reading at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from adapters.readmodel.log_reader import RECORDED_TOPIC, LogReader
from adapters.readmodel.projection import Projector
from adapters.readmodel.session_events import SessionEvents
from application.scope import Scope
from domain.event_types import EventType
from domain.session import Session
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import STORES, settings_for, store_url
from tests.factories import raw_event
from tests.release_0_1_0 import NUMBERS, write_as_0_1_0_left_it
from tests.unit.test_log_decoding import assert_same

SCOPE = Scope(7, 8)


class Tombstone(Aggregate.Event):
    """An event class the read models were not written for (as `Session.Erased` will be)."""

    reason: str


@pytest.fixture(scope="module", params=STORES)
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A store as 0.1.0 left it, then written to by today's service (projecting nothing)."""
    with store_url(request.param, tmp_path_factory.mktemp(request.param)) as url:
        write_as_0_1_0_left_it(url)
        running = bootstrap(settings_for(url), run_projection=False)
        yield running
        running.close()


def shapes() -> list[dict[str, bytes]]:
    """Every event type, and data and metadata of every kind."""
    events = [raw_event(event_type=t.value, data={"type": t.value, "n": i}) for i, t in enumerate(EventType)]
    texts = [
        '{"text": "h\\u00e9llo w\u00f6rld \u2603 \U0001f600",'
        ' "esc": "\\"q\\" \\\\ \\n \\u0000 \\ud83d\\ude00"}'.encode(),
        b'{"big": "' + b"x" * 2_000_000 + b'"}',
        b'{"i": 1, "f": 1.0, "e": 1e3, "E": 1E400, "z": -0.0, "big": 123456789012345678901234567890, "t": 1e-400}',
        b'{ "spaced" :  [1, 2.50, 3e-7] ,"dup": 1, "dup": 2 }',
        b"{}",
    ]
    events += [raw_event(data=text) for text in texts]
    events += [raw_event(data=text, metadata=text) for text in texts[2:]]
    events += [
        raw_event(event_type="conversation_started", data={"conversation_id": "conv-\u2603"}),
        raw_event(event_type="session_status_changed", data={"new_status": "complete"}),
        raw_event(event_type="session_status_changed", data={"new_status": "sideways"}),
        raw_event(sent_at="0001-01-01T00:00:00Z", metadata={"m": None}),
        raw_event(sent_at="9999-12-31T23:59:59.999999+00:00"),
        raw_event(sent_at="2026-03-04T05:06:07.1+05:30"),
        raw_event(id=str(uuid4()), sent_at="2026-03-04T05:06:07"),
    ]
    return events


@pytest.fixture(scope="module")
def log(service: Service) -> list[tuple[int, Any]]:
    """The whole log as the library reads and decodes it."""
    for _ in range(2):
        number = service.sessions.create_session(SCOPE).number
        service.sessions.handle_events(SCOPE, number, shapes())
    session = Session.create_id(number)
    version = service.log.recorder.max_notification_id()  # any version past the session's own
    tombstone = StoredEvent(
        session, 10**6 + version, get_topic(Tombstone), b'{"timestamp":' + _now() + b',"reason":"x"}'
    )
    service.log.recorder.insert_events([tombstone])
    notifications = service.log.recorder.select_notifications(start=1, limit=10**6)
    return [(n.id, service.log.mapper.to_domain_event(n)) for n in notifications]


def _now() -> bytes:
    return json.dumps({"_type_": "datetime_iso", "_data_": "2026-11-27T22:28:37.345968+00:00"}).encode()


def test_the_reader_gives_every_event_the_library_gives(service: Service, log: list[tuple[int, Any]]) -> None:
    reader = LogReader(service.log.mapper, service.database)
    read = reader.read(0, 10**6)
    assert [position for position, _ in read] == [position for position, _ in log]
    for (_, event), (_, expected) in zip(read, log, strict=True):
        assert_same(event, expected)
    kinds = {type(event) for _, event in read}
    assert kinds == {Session.Started, Session.EventRecorded, Tombstone}
    upcast = [e for _, e in read if isinstance(e, Session.EventRecorded) and e.changes is None]
    assert len(upcast) > 1000, "0.1.0's rows"
    assert {e.originator_id for _, e in read if isinstance(e, Session.Started)} >= {
        Session.create_id(n) for n in NUMBERS
    }


def test_the_mapper_decodes_only_what_the_fast_path_must_leave_to_it(
    service: Service, log: list[tuple[int, Any]]
) -> None:
    reader = LogReader(service.log.mapper, service.database)
    reader.read(0, 10**6)
    rows = service.log.recorder.select_notifications(start=1, limit=10**6)
    current = [r for r in rows if r.topic == RECORDED_TOPIC and json.loads(r.state).get("class_version") == 2]
    assert len(current) == 2 * len(shapes())
    assert reader.decoded_by_mapper == len(rows) - len(current)  # sessions' creations, 0.1.0's rows, the tombstone


def test_reading_in_batches_gives_what_reading_at_once_gives(service: Service, log: list[tuple[int, Any]]) -> None:
    reader = LogReader(service.log.mapper, service.database)
    read: list[tuple[int, Any]] = []
    position = 0
    for _ in range(len(log) // 7 + 1):
        batch = reader.read(position, 7)
        assert 0 < len(batch) <= 7
        read += batch
        position = batch[-1][0]
    assert [p for p, _ in read] == [p for p, _ in log]
    assert reader.read(position, 7) == []


def test_a_read_model_receives_an_event_it_does_not_know_decoded(service: Service, log: list[tuple[int, Any]]) -> None:
    projector = Projector(SessionEvents(), service.log, service.database, tracking_name="not-tracked")
    batch, end = projector.read_log(log[-2][0], 10)
    assert end == log[-1][0]
    [tombstone] = batch
    assert isinstance(tombstone.event, Tombstone)
    assert tombstone.event.reason == "x"
    assert tombstone.recorded is None
    session = tombstone.event.originator_id
    assert tombstone.session_number == service.database.session_numbers_of([session])[session]
