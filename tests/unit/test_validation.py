"""The event wrapper's validation, in the original system's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from application.errors import EventRejected
from application.validation import parse_event, parse_events
from tests.factories import raw_event


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
    assert parse_event(raw_event(data={"deep": {"x": [None, True, {"y": 1}]}}), 1).data_json.startswith("{")


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
    assert parse_event(raw_event(session_id=9), 9)
    assert errors_of(raw_event(session_id=8), 9) == {"session_id": ["is invalid"]}


def test_unknown_fields_are_ignored() -> None:
    assert parse_event({**raw_event(), "whatever": b"[1]"}, 1)


def test_a_batch_reports_the_index_of_the_first_invalid_event() -> None:
    with pytest.raises(EventRejected) as rejected:
        parse_events([raw_event(), raw_event(), raw_event(data=...), raw_event(event_type="bad")], 1)
    assert rejected.value.index == 2
    assert rejected.value.errors == {"data": ["can't be blank"]}
