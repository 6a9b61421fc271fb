"""The log's transcoder writes what the library's would: the library reads both back alike."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder
from hypothesis import given
from hypothesis import strategies as st

from adapters.eventstore.transcoder import CompactJSONTranscoder
from domain.event_types import EventType
from domain.session import Session
from tests.factories import new_event


def registered(transcoder: JSONTranscoder) -> JSONTranscoder:
    Application.register_transcodings(None, transcoder)  # type: ignore[arg-type]  # it uses no state
    return transcoder


OURS, LIBRARY = registered(CompactJSONTranscoder()), registered(JSONTranscoder())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.uuids(),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])),
    st.decimals(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(values)
def test_the_library_reads_ours_as_it_reads_its_own(value: Any) -> None:
    try:
        theirs = LIBRARY.decode(LIBRARY.encode(value))
    except UnicodeEncodeError:  # a lone surrogate: neither can write it
        return
    assert same(LIBRARY.decode(OURS.encode(value)), theirs)


def test_a_recorded_event_is_written_as_the_library_writes_it() -> None:
    session = Session(number=7, account_id=1, user_id=2, state_json='{"é": 1}')
    session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "ç"}, metadata_json='{"m":[1]}')])
    for event in session.collect_events():
        state = dict(event.__dict__)
        assert OURS.encode(state) == LIBRARY.encode(state)


def test_what_msgspec_would_write_otherwise_is_left_to_the_library() -> None:
    for value in (
        {"n": float("nan")},  # msgspec would write null
        {"i": float("inf")},
        {1: "an int key"},  # msgspec refuses it; the library writes "1"
        {"d": Decimal("1.10"), "u": UUID(int=1), "at": datetime(2026, 1, 1, tzinfo=UTC)},
    ):
        assert OURS.encode(value) == LIBRARY.encode(value)
