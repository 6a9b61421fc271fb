"""Query parameters: defaults, ranges and the messages that name the bad parameter."""

from __future__ import annotations

import pytest

from application.errors import InvalidQuery
from application.queries import (
    DEFAULT_EVENT_PAGE,
    DEFAULT_SESSION_PAGE,
    MAX_OFFSET,
    MAX_PAGE,
    EventQuery,
    Order,
    Page,
)
from domain.event_types import EventType

LIMIT_RANGE = ["must be between 1 and 1000"]
OFFSET_RANGE = [f"must be between 0 and {2**62}"]


def errors_of(parse, **parameters: object) -> dict[str, list[str]]:
    with pytest.raises(InvalidQuery) as invalid:
        parse(**parameters)
    return invalid.value.errors


def test_event_query_defaults() -> None:
    assert EventQuery.parse() == EventQuery(None, DEFAULT_EVENT_PAGE, 0, Order.ASC) == EventQuery()
    assert (DEFAULT_EVENT_PAGE, MAX_PAGE, MAX_OFFSET) == (100, 1000, 2**62)
    assert EventQuery.parse(event_type="", order="") == EventQuery(None, 100, 0, Order.ASC)


def test_event_query_values_are_parsed() -> None:
    parsed = EventQuery.parse(event_type="fileCreated", limit=7, offset=3, order="DESC")
    assert parsed == EventQuery(EventType.FILE_CREATED, 7, 3, Order.DESC)
    assert EventQuery.parse(event_type="tool_called", order="asc") == EventQuery(EventType.TOOL_CALLED)


@pytest.mark.parametrize(("limit", "offset"), [(1, 0), (MAX_PAGE, MAX_OFFSET)])
def test_the_bounds_themselves_are_accepted(limit: int, offset: int) -> None:
    assert EventQuery.parse(limit=limit, offset=offset) == EventQuery(limit=limit, offset=offset)
    assert Page.parse(limit=limit, offset=offset) == Page(limit, offset)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"limit": 0}, {"limit": LIMIT_RANGE}),
        ({"limit": MAX_PAGE + 1}, {"limit": LIMIT_RANGE}),
        ({"offset": -1}, {"offset": OFFSET_RANGE}),
        ({"offset": MAX_OFFSET + 1}, {"offset": OFFSET_RANGE}),
        ({"event_type": "nope"}, {"event_type": ["is invalid"]}),
        ({"order": "sideways"}, {"order": ["must be asc or desc"]}),
    ],
)
def test_each_bad_parameter_is_named(parameters: dict, expected: dict) -> None:
    assert errors_of(EventQuery.parse, **parameters) == expected


def test_every_bad_parameter_is_named_at_once() -> None:
    assert errors_of(EventQuery.parse, event_type="nope", limit=0, offset=-1, order="up") == {
        "event_type": ["is invalid"],
        "limit": LIMIT_RANGE,
        "offset": OFFSET_RANGE,
        "order": ["must be asc or desc"],
    }


def test_page_defaults_and_errors() -> None:
    assert Page.parse() == Page(DEFAULT_SESSION_PAGE, 0) == Page()
    assert DEFAULT_SESSION_PAGE == 50
    assert Page.parse(limit=20, offset=40) == Page(20, 40)
    assert errors_of(Page.parse, limit=MAX_PAGE + 1, offset=-1) == {"limit": LIMIT_RANGE, "offset": OFFSET_RANGE}
    assert errors_of(Page.parse, limit=0) == {"limit": LIMIT_RANGE}


def test_invalid_query_keeps_its_own_copy_of_the_errors() -> None:
    messages = ["must be between 1 and 1000"]
    error = InvalidQuery({"limit": messages})
    messages.append("changed later")
    assert error.errors == {"limit": ["must be between 1 and 1000"]}
    assert str(error) == "invalid query: {'limit': ['must be between 1 and 1000']}"
