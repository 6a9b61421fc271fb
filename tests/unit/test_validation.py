"""The event wrapper's validation, in the original system's words."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application import validation
from application.errors import EventRejected
from application.validation import MAX_STATE_BYTES, SessionFields, parse_event, parse_events, parse_session_fields
from domain.event_types import EventType
from domain.session import NewEvent
from tests.factories import raw_event


def summary(event: NewEvent) -> tuple[object, ...]:
    """Everything parsed but the id, which is random when the client gives none."""
    return (event.event_type, event.sent_at, event.data_json, event.metadata_json, event.id_from_client)


def errors_of(raw: dict[str, bytes], session_id: int = 1) -> dict[str, list[str]]:
    with pytest.raises(EventRejected) as rejected:
        parse_event(raw, session_id)
    return rejected.value.errors


def test_a_valid_event_passes_with_data_kept_as_sent() -> None:
    raw = raw_event(sent_at="2026-01-02T03:04:05Z", data=b'{"b": 1.0, "a": [1, 2e3], "s": "\\u00e9"}')
    event = parse_event(raw, 1)
    assert event.data_json == '{"b": 1.0, "a": [1, 2e3], "s": "\\u00e9"}'
    assert event.sent_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("missing", ["event_type", "sent_at", "data"])
def test_missing_required_fields_are_blank(missing: str) -> None:
    assert errors_of(raw_event(**{missing: ...})) == {missing: ["can't be blank"]}


@pytest.mark.parametrize("field", ["event_type", "sent_at", "data"])
def test_null_required_fields_are_blank(field: str) -> None:
    assert errors_of(raw_event(**{field: None})) == {field: ["can't be blank"]}


def test_every_invalid_field_is_named() -> None:
    assert errors_of(raw_event(event_type="nope", sent_at="yesterday", data=[1], metadata="x", id="42")) == {
        "event_type": ["is invalid"],
        "sent_at": ["is invalid"],
        "data": ["is invalid"],
        "metadata": ["is invalid"],
        "id": ["is invalid"],
    }


@pytest.mark.parametrize("value", [5, True, "", "   "])
def test_event_type_of_the_wrong_kind(value: object) -> None:
    expected = "can't be blank" if isinstance(value, str) else "is invalid"
    assert errors_of(raw_event(event_type=value)) == {"event_type": [expected]}


def test_camel_case_event_types_are_accepted() -> None:
    assert parse_event(raw_event(event_type="sessionStatusChanged"), 1).event_type == "session_status_changed"


def test_data_accepts_any_object() -> None:
    data = {"deep": {"x": [None, True, {"y": 1}]}}
    assert parse_event(raw_event(data=data), 1).data_json == json.dumps(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02t03:04:05.123456789z", datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
        (
            "2026-01-02 03:04:05.5-01:30",
            datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone(-timedelta(hours=1, minutes=30))).astimezone(UTC),
        ),
    ],
)
def test_sent_at_is_rfc3339_and_without_offset_means_utc(text: str, expected: datetime) -> None:
    assert parse_event(raw_event(sent_at=text), 1).sent_at == expected


@pytest.mark.parametrize(
    "text", ["2026-01-02", "2026-13-02T00:00:00Z", "2026-01-02T25:00:00Z", "tomorrow", "1700000000"]
)
def test_bad_dates_are_invalid(text: str) -> None:
    assert errors_of(raw_event(sent_at=text)) == {"sent_at": ["is invalid"]}


def test_timestamp_is_an_alias_of_sent_at() -> None:
    event = parse_event(raw_event(sent_at=..., timestamp="2026-01-02T03:04:05Z"), 1)
    assert event.sent_at.year == 2026
    assert errors_of(raw_event(sent_at=..., timestamp="bad")) == {"timestamp": ["is invalid"]}


def test_a_client_id_must_be_a_uuid() -> None:
    event_id = "0b8c9b7e-6f4e-4a51-9a8f-3f2b1c0d9e8a"
    assert parse_event(raw_event(id=event_id), 1).event_id == UUID(event_id)
    assert errors_of(raw_event(id=123)) == {"id": ["is invalid"]}


def test_session_id_must_match_the_path() -> None:
    assert summary(parse_event(raw_event(session_id=9), 9)) == summary(parse_event(raw_event(), 9))
    assert summary(parse_event(raw_event(session_id="9"), 9)) == summary(parse_event(raw_event(), 9))
    assert errors_of(raw_event(session_id=8), 9) == {"session_id": ["is invalid"]}


@pytest.mark.parametrize("value", ["8", "9.0", " 9", "\u0669", 9.0, True, [9], {"id": 9}])
def test_a_session_id_of_another_value_or_kind_is_invalid(value: object) -> None:
    assert errors_of(raw_event(session_id=value), 9) == {"session_id": ["is invalid"]}


def test_unknown_fields_are_ignored() -> None:
    event = parse_event({**raw_event(data={"k": 1}), "whatever": b"[1]"}, 1)
    assert summary(event) == (EventType.TOOL_CALLED, datetime(2026, 1, 1, tzinfo=UTC), '{"k": 1}', None, False)


def test_a_batch_reports_the_index_of_the_first_invalid_event() -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_events([raw_event(), raw_event(), raw_event(data=...), raw_event(event_type="bad")], 1)
    assert rejected.value.index == 2
    assert rejected.value.errors == {"data": ["can't be blank"]}


def test_a_batch_passes_the_path_session_id_to_every_event() -> None:
    events = parse_events([raw_event(session_id=4), raw_event(session_id="4", event_type="tool_result")], 4)
    assert [e.event_type for e in events] == [EventType.TOOL_CALLED, EventType.TOOL_RESULT]


def test_a_valid_batch_keeps_its_order_and_an_empty_one_is_empty() -> None:
    events = parse_events([raw_event(data={"n": n}) for n in range(3)], 1)
    assert [e.data_json for e in events] == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert parse_events([], 1) == []


def test_a_client_id_is_marked_as_such_and_a_missing_one_is_made_up() -> None:
    event_id = "0b8c9b7e-6f4e-4a51-9a8f-3f2b1c0d9e8a"
    given = parse_event(raw_event(id=event_id), 1)
    made_up = [parse_event(raw_event(), 1), parse_event(raw_event(id=None), 1)]
    assert (given.event_id, given.id_from_client) == (UUID(event_id), True)
    assert [e.id_from_client for e in made_up] == [False, False]
    assert made_up[0].event_id != made_up[1].event_id


def test_metadata_is_kept_as_sent_and_optional() -> None:
    assert parse_event(raw_event(metadata=b' {"m": 1.0, "z": [ ]} '), 1).metadata_json == '{"m": 1.0, "z": [ ]}'
    assert parse_event(raw_event(), 1).metadata_json is None
    assert parse_event(raw_event(metadata=None), 1).metadata_json is None


def test_fields_may_come_as_text_as_well_as_bytes() -> None:
    text_fields = {"event_type": '"tool_result"', "sent_at": '"2026-01-02T03:04:05Z"', "data": '{"a": 1.50}'}
    event = parse_event(text_fields, 1)
    assert summary(event) == (
        EventType.TOOL_RESULT,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        '{"a": 1.50}',
        None,
        False,
    )


def test_sent_at_wins_over_timestamp_and_a_null_sent_at_gives_way_to_it() -> None:
    both = parse_event(raw_event(sent_at="2026-01-02T03:04:05Z", timestamp="2027-01-01T00:00:00Z"), 1)
    assert both.sent_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    null_sent_at = parse_event(raw_event(sent_at=None, timestamp="2027-01-01T00:00:00Z"), 1)
    assert null_sent_at.sent_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert errors_of(raw_event(sent_at=None, timestamp=None)) == {"sent_at": ["can't be blank"]}


@pytest.fixture
def local_time_is_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_is_not_utc")
@pytest.mark.parametrize("text", ["2026-07-02T03:04:05+02:00", "2026-07-02T03:04:05Z", "2026-07-02T03:04:05"])
def test_sent_at_is_always_in_utc_whatever_the_local_time_zone(text: str) -> None:
    assert parse_event(raw_event(sent_at=text), 1).sent_at.utcoffset() == timedelta(0)


def test_a_time_beyond_the_calendar_once_in_utc_is_invalid() -> None:
    assert errors_of(raw_event(sent_at="0001-01-01T00:00:00+01:00")) == {"sent_at": ["is invalid"]}


def test_session_fields_are_optional_and_kept_as_sent() -> None:
    assert parse_session_fields({}) == SessionFields(None, None, None, None)
    given = raw_event(event_type=..., sent_at=..., data=..., type="coding", agent="claude", environment="vscode")
    given["state"] = b' {"a": 1.0} '
    assert parse_session_fields(given) == SessionFields("coding", "claude", "vscode", '{"a": 1.0}')
    nulls = {name: b"null" for name in ("type", "agent", "environment", "state")}
    assert parse_session_fields(nulls) == SessionFields(None, None, None, None)


def session_errors(fields: dict[str, bytes]) -> dict[str, list[str]]:
    with pytest.raises(EventRejected) as rejected:
        parse_session_fields(fields)
    assert rejected.value.index is None
    return rejected.value.errors


def test_every_bad_session_field_is_named() -> None:
    assert session_errors({"type": b"5", "agent": b"true", "environment": b"[]", "state": b"[1]"}) == {
        "type": ["is invalid"],
        "agent": ["is invalid"],
        "environment": ["is invalid"],
        "state": ["is invalid"],
    }


@pytest.mark.parametrize("name", ["type", "agent", "environment"])
def test_labels_are_at_most_1000_characters(name: str) -> None:
    longest = "é" * 1000
    assert getattr(parse_session_fields({name: json.dumps(longest).encode()}), name) == longest
    assert session_errors({name: json.dumps("x" * 1001).encode()}) == {name: ["should be at most 1000 characters"]}


def test_state_is_at_most_one_mebibyte() -> None:
    padding = MAX_STATE_BYTES - len('{"s": ""}')
    largest = json.dumps({"s": "x" * padding}).encode()
    assert parse_session_fields({"state": largest}).state_json == largest.decode()
    assert session_errors({"state": json.dumps({"s": "x" * (padding + 1)}).encode()}) == {
        "state": ["should be at most 1048576 bytes"]
    }


def test_a_rejection_says_where_it_happened() -> None:
    single = EventRejected({"data": ["can't be blank"]})
    in_batch = EventRejected({"data": ["can't be blank"]}, index=3)
    assert str(single) == "invalid event: {'data': [\"can't be blank\"]}"
    assert str(in_batch) == "invalid event at index 3: {'data': [\"can't be blank\"]}"
    assert (single.index, in_batch.index, in_batch.errors) == (None, 3, {"data": ["can't be blank"]})


@given(st.text(), st.booleans(), st.booleans())
def test_a_field_read_without_the_json_reader_reads_as_the_json_reader_reads_it(
    text: str, ascii_only: bool, as_bytes: bool
) -> None:
    """`_plain_string` shortcuts plain JSON strings; whatever it accepts must read exactly as
    `json.loads` reads it, and anything escaped must be left to `json.loads`."""
    token = json.dumps(text, ensure_ascii=ascii_only)
    raw: str | bytes = token.encode() if as_bytes else token
    plain = validation._plain_string(raw)
    if plain is not None:
        assert plain == json.loads(raw) == text
    assert validation._decoded({"f": raw}, "f") == text


@given(st.binary(max_size=12))
def test_any_bytes_read_as_the_json_reader_reads_them_or_are_left_to_it(raw: bytes) -> None:
    plain = validation._plain_string(raw)
    if plain is not None:
        assert json.loads(raw) == plain


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ('"tool_called"', "tool_called"),
        ('""', ""),
        ('"2026-12-07T11:00:00Z"', "2026-12-07T11:00:00Z"),
        ('"caf\u00e9 \u2603"', "caf\u00e9 \u2603"),
        ('"', None),
        ("", None),
        ('"open', None),
        ('open"', None),
        ("12", None),
        ('"a\\"b"', None),
        ('"a\\nb"', None),
        ('"a\\u0041"', None),
        ('"tab\there"', None),
        ('"nul\x00"', None),
        ('"\x1f"', None),
        ("null", None),
        ('{"a": "b"}', None),
    ],
)
def test_only_a_string_with_nothing_escaped_takes_the_short_way(raw: str, plain: str | None, as_bytes: bool) -> None:
    """The property tests above cannot tell a shortcut never taken from one taken: these pin
    which values it reads itself (the common case it exists for) and which it leaves to the reader."""
    value: str | bytes = raw.encode() if as_bytes else raw
    assert validation._plain_string(value) == plain


def test_bytes_that_are_not_utf8_are_left_to_the_json_reader() -> None:
    assert validation._plain_string(b'"\xff\xfe"') is None
    assert validation._decoded({"f": b'"\xff\xfe"'}, "f") is validation._UNDECODABLE
