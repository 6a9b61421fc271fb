"""The projections' fast decoding of the log gives exactly what the library's mapper gives, or
steps aside for the mapper: same class, same fields in the same order, same values of the same
types (UUIDs, datetimes with their offsets, the JSON texts untouched, `changes`).

States are written by the library's own mapper and transcoder (as the store keeps them), or are
0.1.0's rows; no database (tests/integration/test_log_reader.py reads them from both stores)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent, Transcoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.readmodel.log_reader import RECORDED_TOPIC, RECORDED_VERSION, decode_recorded, decodes_like_the_library
from domain.event_types import EventType
from domain.session import Session
from tests.release_0_1_0 import rows_0_1_0_wrote, transcoder

mapper: Mapper[Any] = Mapper(transcoder())
SESSION = Session.create_id(1)


def assert_same(fast: Any, slow: Any) -> None:
    """Same class, same attributes in the same order, each equal and of the same type (repr
    tells `1` from `1.0` and `True`, a UUID from its text, one offset from another)."""
    assert type(fast) is type(slow)
    assert list(vars(fast)) == list(vars(slow))
    assert repr(vars(fast)) == repr(vars(slow))
    for name, value in vars(slow).items():
        assert type(vars(fast)[name]) is type(value), name
        if isinstance(value, datetime):
            assert vars(fast)[name].utcoffset() == value.utcoffset(), name
        elif not (isinstance(value, float) and math.isnan(value)):
            assert vars(fast)[name] == value, name


def recorded(**fields: Any) -> StoredEvent:
    """An `EventRecorded` as the store keeps it, through the library's mapper."""
    values: dict[str, Any] = {
        "originator_id": SESSION,
        "originator_version": 2,
        "timestamp": datetime(2026, 11, 27, 22, 28, 37, 345968, tzinfo=UTC),
        "event_id": uuid4(),
        "event_type": "tool_called",
        "sent_at": datetime(2026, 1, 2, 3, 0, 1, 500000, tzinfo=UTC),
        "data": '{"tool_name": "Read"}',
        "metadata": None,
        "sequence": 1,
        "changes": {},
    }
    values.update(fields)
    return mapper.to_stored_event(Session.EventRecorded(**values))


def fast(row: StoredEvent) -> Any:
    assert isinstance(row.originator_id, UUID)
    return decode_recorded(row.state, row.originator_id, row.originator_version)


def with_state(row: StoredEvent, change: Any) -> StoredEvent:
    """The row with its decoded JSON state changed by `change` (a function of the dict)."""
    state = json.loads(row.state)
    change(state)
    return StoredEvent(row.originator_id, row.originator_version, row.topic, json.dumps(state).encode())


@pytest.mark.parametrize("event_type", [t.value for t in EventType])
def test_every_event_type_decodes_as_the_mapper_decodes_it(event_type: str) -> None:
    row = recorded(event_type=event_type, data=json.dumps({"type": event_type, "n": 1}))
    decoded = fast(row)
    assert decoded is not None
    assert_same(decoded, mapper.to_domain_event(row))


@pytest.mark.parametrize(
    "fields",
    [
        {"data": '{"text": "héllo wörld ☃ 😀 中文 \\u00e9 \\ud83d\\ude00", "😀": "\\"quoted\\" \\\\ back\\nslash"}'},
        {"data": '{"raw": "\u0000 \u001f \u2028 \u2029 \ufeff"}'},
        {"data": '{"big": "' + "x" * 3_000_000 + '"}'},
        {"data": '{"i": 1, "f": 1.0, "e": 1e3, "E": 1E400, "neg": -0.0, "big": 123456789012345678901234567890}'},
        {"data": '{ "spaced" :  [1, 2.50, 3e-7] ,"dup": 1, "dup": 2 }'},
        {"data": "{}", "metadata": '{"source": "ide", "n": 1.0}'},
        {"metadata": "{}"},
        {"metadata": None},
        {"changes": {"status": "complete"}},
        {"changes": {"external_conversation_id": "conv-☃"}},
        {"changes": {"n": 1, "f": 1.5, "big": 2**100, "neg": -(2**70), "t": True, "no": None, "z": 0.0}},
        {"changes": None},
        {"sequence": 2**63 + 5},
        {"sequence": -1},
        {"sent_at": datetime(1, 1, 1, tzinfo=UTC), "timestamp": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)},
        {"sent_at": datetime(2026, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))},
        {"sent_at": datetime(2026, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=-3, seconds=7)))},
        {"sent_at": datetime(2026, 1, 1, 10, 0)},  # naive
        {"event_id": UUID(int=0)},
        {"event_id": UUID(int=2**128 - 1)},
    ],
    ids=",".join,
)
def test_every_shape_decodes_as_the_mapper_decodes_it(fields: dict[str, Any]) -> None:
    row = recorded(**fields)
    decoded = fast(row)
    assert decoded is not None
    assert_same(decoded, mapper.to_domain_event(row))


def test_the_json_texts_are_the_very_strings_stored() -> None:
    text = '{ "a" : 1.0 , "a": 1e3, "s": "\\u00e9" }'
    decoded = fast(recorded(data=text, metadata=text))
    assert decoded.data == text
    assert decoded.metadata == text


finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
offsets = st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1).map(
    lambda seconds: timezone(timedelta(seconds=seconds))
)
moments = st.datetimes(timezones=st.none() | st.just(UTC) | offsets | st.timezones())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    timestamp=moments,
    sent_at=moments,
    event_id=st.uuids(),
    event_type=st.text(),
    data=st.text(),
    metadata=st.none() | st.text(),
    sequence=st.integers(),
    changes=st.none() | st.dictionaries(st.sampled_from(["_type_", "_data_"]) | st.text(), scalars | st.floats()),
)
def test_any_state_the_library_writes_is_decoded_as_the_mapper_decodes_it_or_left_to_it(**fields: Any) -> None:
    row = recorded(**fields)
    decoded = fast(row)
    changes = fields["changes"] or {}
    # NaN and infinities are not JSON, and a `_type_` key may be a transcoded value: the mapper decides.
    plain = "_type_" not in changes and all(not isinstance(v, float) or math.isfinite(v) for v in changes.values())
    assert (decoded is not None) == plain
    if decoded is not None:
        assert_same(decoded, mapper.to_domain_event(row))


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.pop("class_version"),  # version 1 (0.1.0), needs its upcaster
        lambda s: s.update(class_version=3),  # a later version
        lambda s: s.update(class_version=2.0),
        lambda s: s.update(extra="field"),
        lambda s: s.pop("changes"),
        lambda s: s.pop("metadata"),
        lambda s: s.update(sequence=1.0),
        lambda s: s.update(sequence="1"),
        lambda s: s.update(data={"tool_name": "Read"}),  # an object, not its text
        lambda s: s.update(metadata=1),
        lambda s: s.update(changes=[]),
        lambda s: s.update(changes={"status": ["a"]}),
        lambda s: s.update(changes={"status": {"nested": 1}}),
        lambda s: s.update(changes={"_type_": "uuid_hex", "_data_": "00000000000040008000000000000001"}),
        lambda s: s.update(changes={"_type_": "mystery"}),
        lambda s: s["event_id"].pop("_type_"),  # `{"_data_": ...}` stays a dict for the library
        lambda s: s["event_id"].update(_type_="datetime_iso"),
        lambda s: s["event_id"].update(extra=1),
        lambda s: s["event_id"].update(_data_="{00000000-0000-4000-8000-000000000001}"),
        lambda s: s["event_id"].update(_data_="urn:uuid:00000000-0000-4000-8000-000000000001"),
        lambda s: s["sent_at"].update(_type_="uuid_hex"),
        lambda s: s["sent_at"].update(_data_="yesterday"),
        lambda s: s.update(sent_at="2026-01-01T00:00:00+00:00"),  # untagged: a string for the library
        lambda s: s.update(timestamp=None),
    ],
)
def test_a_state_off_the_shape_is_left_to_the_mapper(change: Any) -> None:
    row = with_state(recorded(), change)
    assert fast(row) is None


def test_a_state_that_is_not_json_is_left_to_the_mapper() -> None:
    row = recorded()
    for state in (b"", b"{", row.state[:-1], b"\xff" + row.state, row.state + b"x", b"[]", b"null"):
        assert decode_recorded(state, SESSION, 2) is None


def test_the_rows_0_1_0_stored_are_left_to_the_mapper_and_its_upcaster() -> None:
    rows = [row for row in rows_0_1_0_wrote() if row.topic == RECORDED_TOPIC]
    assert rows
    for row in rows:
        assert fast(row) is None
        assert mapper.to_domain_event(row).changes is None  # what the upcaster makes of them


def test_the_fast_path_describes_the_current_class_version() -> None:
    assert Session.EventRecorded.class_version == RECORDED_VERSION


def test_only_the_library_s_own_plain_json_is_decoded_fast() -> None:
    assert decodes_like_the_library(mapper)
    assert not decodes_like_the_library(Mapper(transcoder(), compressor=ZlibCompressor()))
    assert not decodes_like_the_library(Mapper(transcoder(), cipher=object()))  # type: ignore[arg-type]

    class OwnDecoding(JSONTranscoder):
        def decode(self, data: bytes) -> Any:
            return super().decode(data)

    class OwnObjects(JSONTranscoder):
        def _decode_obj(self, d: dict[str, Any]) -> Any:
            return super()._decode_obj(d)

    class OnlyWritesDifferently(JSONTranscoder):
        def encode(self, obj: Any) -> bytes:
            return super().encode(obj)

    for kind, fast in ((OwnDecoding, False), (OwnObjects, False), (OnlyWritesDifferently, True)):
        own = kind()
        for transcoding in transcoder().names.values():
            own.register(transcoding)
        assert decodes_like_the_library(Mapper(own)) is fast, kind

    class DatetimeAsTimestamp(Transcoding):
        type = datetime
        name = "datetime_iso"

        def encode(self, obj: datetime) -> float:
            return obj.timestamp()

        def decode(self, data: float) -> datetime:
            return datetime.fromtimestamp(data, UTC)

    other = transcoder()
    other.register(DatetimeAsTimestamp())
    assert not decodes_like_the_library(Mapper(other))
    assert isinstance(transcoder().names["datetime_iso"], DatetimeAsISO)
