"""Small values the read models and the export hand around."""

from __future__ import annotations

from datetime import UTC, datetime

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
