"""Small values the read models and the export hand around."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapters.readmodel.session_stats import tool_fields
from application.errors import ReadModelFailed, StoreUnavailable
from application.queries import ToolStats
from application.validation import parse_rfc3339


def test_a_failed_read_model_says_which_where_and_why() -> None:
    failed = ReadModelFailed("session_stats", 42, "ValueError: bad")
    assert isinstance(failed, StoreUnavailable)  # answered as a 503
    assert (failed.projection, failed.position) == ("session_stats", 42)
    assert str(failed) == "the session_stats read model failed at log position 42: ValueError: bad"


def test_tool_stats_as_a_mapping() -> None:
    assert ToolStats(3, 2, 1, 12.5).as_dict() == {"calls": 3, "completed": 2, "failures": 1, "total_duration_ms": 12.5}


def test_rfc3339_as_event_times_read_it() -> None:
    assert parse_rfc3339("2026-01-15T10:00:00+02:00") == datetime(2026, 1, 15, 8, tzinfo=UTC)
    assert parse_rfc3339("2026-01-15T10:00:00") == datetime(2026, 1, 15, 10, tzinfo=UTC)  # no offset: UTC
    assert parse_rfc3339("yesterday") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
keys = st.sampled_from(["tool_name", "tool_use_id", "success", "tool\\u005fname"]) | st.text()


def object_text(pairs: list[tuple[str, Any]]) -> str:
    """A JSON object written by hand: keys may repeat, and escapes in keys stay as given."""
    members = (
        f'"{key}": {json.dumps(value)}' if "\\" in key else f"{json.dumps(key)}: {json.dumps(value)}"
        for key, value in pairs
    )
    return "{" + ", ".join(members) + "}"


def as_json_reads_them(text: str) -> tuple[Any, Any, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return (None, None, None)
    if not isinstance(data, dict):
        return (None, None, None)
    return (data.get("tool_name"), data.get("tool_use_id"), data.get("success"))


@given(
    st.lists(st.tuples(keys, json_values), max_size=6).map(object_text)
    | json_values.map(json.dumps)
    | json_values.map(lambda value: json.dumps(value, ensure_ascii=False))
    | st.text()
)
def test_a_tool_event_s_keys_are_read_as_json_reads_them(text: str) -> None:
    fields = tool_fields(text)
    assert repr((fields.tool_name, fields.tool_use_id, fields.success)) == repr(as_json_reads_them(text))


def test_a_tool_event_s_keys_in_texts_msgspec_refuses_but_json_reads() -> None:
    for text in ('{"tool_name": "a", "x": NaN}', '{"tool_name": "\\ud800"}', '{"success": false, "x": -Infinity}'):
        fields = tool_fields(text)
        assert repr((fields.tool_name, fields.tool_use_id, fields.success)) == repr(as_json_reads_them(text))
    assert tool_fields('{"tool_name": "a", "tool_name": "b"}').tool_name == "b"
    assert tool_fields('["tool_name"]').tool_name is None
    assert tool_fields("{").tool_name is None
