"""Request bodies decoded into raw fields: every malformed body is refused with a reason (a 4xx,
never a 500), a batch names the index of a bad item, and `data` keeps its exact bytes."""

from __future__ import annotations

import json

import pytest

from application.errors import EventRejected
from entrypoints.http.bodies import MAX_BATCH, MalformedBody, event_batch, json_object
from tests.factories import wire_event

DEEP = b"[" * 5000 + b"]" * 5000
DATA = b'{"b": 1.0, "a": [1, 2e3, 1E+2],  "big": 123456789012345678901234567890, "s": "\\u00e9\xc3\xa9"}'
"""Spacing, number spellings and escapes a decoder would normalise, and a UTF-8 character."""


def malformed(body: bytes) -> str:
    with pytest.raises(MalformedBody) as refused:
        json_object(body)
    return str(refused.value)


def rejected(body: bytes) -> tuple[dict[str, list[str]], int | None]:
    with pytest.raises(EventRejected) as refused:
        event_batch(body)
    return refused.value.errors, refused.value.index


def batch_of(count: int) -> bytes:
    return json.dumps({"events": [wire_event()] * count}).encode()


@pytest.mark.parametrize("body", [b"", b"  \r\n\t "])
def test_an_empty_body_is_an_empty_object(body: bytes) -> None:
    assert json_object(body) == {}


def test_a_body_that_is_not_utf8_is_refused_with_where() -> None:
    assert malformed(b'{"data": {"a": "\xff"}}') == "the body is not UTF-8: invalid start byte at byte 16"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"null", b"5", b"true"])
def test_a_body_that_is_not_an_object_is_refused(body: bytes) -> None:
    assert malformed(body) == "the body must be a JSON object"


@pytest.mark.parametrize("body", [b"{", b'{"a": }', b"{} x", b"{'a': 1}"])
def test_malformed_json_is_refused_with_the_decoder_s_reason(body: bytes) -> None:
    assert malformed(body).startswith("malformed JSON: ")


@pytest.mark.parametrize(
    "body", [b'{"data": ' + DEEP + b"}", b'{"events": [' + DEEP + b"]}", b'{"events": [{"data": ' + DEEP + b"}]}"]
)
def test_deep_nesting_is_refused_not_a_crash(body: bytes) -> None:
    assert malformed(body) == "the body is nested too deeply"
    with pytest.raises(MalformedBody):
        event_batch(body)


def test_each_field_keeps_its_exact_json_text() -> None:
    body = b'{"event_type" : "tool_called", "data": ' + DATA + b', "metadata":null, "n": 1.50}'
    assert json_object(body) == {"event_type": b'"tool_called"', "data": DATA, "metadata": b"null", "n": b"1.50"}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (b"{}", {"events": ["can't be blank"]}),
        (b"", {"events": ["can't be blank"]}),
        (b'{"events": null}', {"events": ["can't be blank"]}),
        (b'{"events": {}}', {"events": ["is invalid"]}),
        (b'{"events": "x"}', {"events": ["is invalid"]}),
        (b'{"events": 5}', {"events": ["is invalid"]}),
    ],
)
def test_a_batch_needs_a_list_of_events(body: bytes, errors: dict) -> None:
    assert rejected(body) == (errors, None)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_batch_holds_1_to_1000_events(count: int) -> None:
    assert MAX_BATCH == 1000
    assert rejected(batch_of(count)) == ({"events": ["must hold between 1 and 1000 events"]}, None)


@pytest.mark.parametrize("count", [1, MAX_BATCH])
def test_the_batch_bounds_themselves_are_accepted(count: int) -> None:
    batch = event_batch(batch_of(count))
    assert len(batch) == count
    assert batch[-1] == {"event_type": b'"tool_called"', "sent_at": b'"2026-01-01T00:00:00Z"', "data": b"{}"}


@pytest.mark.parametrize(("item", "index"), [(b"5", 1), (b"[]", 2), (b'"x"', 1), (b"null", 2)])
def test_an_item_that_is_not_an_object_is_named_by_its_index(item: bytes, index: int) -> None:
    items = [b"{}"] * 3
    items[index] = item
    body = b'{"events": [' + b", ".join(items) + b"]}"
    assert rejected(body) == ({"event": ["must be a JSON object"]}, index)


def test_a_batch_keeps_each_event_s_data_to_the_byte_and_in_order() -> None:
    body = b'{"events": [{"data": ' + DATA + b'}, {"data": {"n":2}, "id": "x"}]}'
    assert event_batch(body) == [{"data": DATA}, {"data": b'{"n":2}', "id": b'"x"'}]


def test_a_batch_body_that_is_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedBody, match="must be a JSON object"):
        event_batch(b"[{}]")
