"""What the `session_stats` read model counts, on each store, through the service's use case
(`get_stats` reads its writes: every event recorded before the call is counted, with no waiting
in the test). The contract: "Analysts" and "Conventional data keys" in the HTTP API spec."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.readmodel import session_stats
from application.errors import SessionNotFound
from application.queries import SessionStats
from application.scope import Scope
from entrypoints.bootstrap import Service
from tests.conftest import STORES
from tests.factories import SENT_AT_TIME, raw_event
from tests.integration.stepping import Stepped, stepped_service


def at(ms: float) -> str:
    """A `sent_at` `ms` milliseconds after the factories' default time (microseconds kept)."""
    return (SENT_AT_TIME + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")


def event(event_type: str, ms: float = 0, **data: Any) -> dict[str, bytes]:
    return raw_event(event_type=event_type, sent_at=at(ms), data=data)


def call(tool_name: Any, tool_use_id: Any, ms: float = 0) -> dict[str, bytes]:
    return event("tool_called", ms, tool_name=tool_name, tool_use_id=tool_use_id)


def result(tool_use_id: Any, ms: float, **data: Any) -> dict[str, bytes]:
    return event("tool_result", ms, tool_use_id=tool_use_id, **data)


def tools(stats: SessionStats) -> dict[str, tuple[int, int, int, float]]:
    """Each tool's (calls, completed, failures, total_duration_ms), the duration to the
    nanosecond: fractions of a millisecond must survive, float noise need not."""
    return {name: (t.calls, t.completed, t.failures, round(t.total_duration_ms, 6)) for name, t in stats.tools.items()}


def types_of(batch: list[dict[str, bytes]]) -> dict[str, int]:
    return dict(Counter(e["event_type"].decode().strip('"') for e in batch))


def new_session(service: Service, scope: Scope) -> int:
    return service.sessions.create_session(scope).number


def test_a_session_without_events_has_zeros_and_nulls(service: Service, scope: Scope) -> None:
    number = new_session(service, scope)
    assert service.sessions.get_stats(scope, number) == SessionStats(
        session_id=number, event_count=0, first_sent_at=None, last_sent_at=None, by_type={}, errors=0, tools={}
    )


def test_a_missing_or_foreign_session_is_not_found(service: Service, scope: Scope) -> None:
    number = new_session(service, scope)
    service.sessions.handle_events(scope, number, [event("error_occurred")])
    stranger = Scope(account_id=scope.account_id, user_id=scope.user_id + 1)
    with pytest.raises(SessionNotFound):
        service.sessions.get_stats(stranger, number)
    with pytest.raises(SessionNotFound):
        service.sessions.get_stats(scope, number + 1_000_000)


def test_counts_by_type_list_only_the_types_present_and_errors_count_error_occurred(
    service: Service, scope: Scope
) -> None:
    number = new_session(service, scope)
    batch = [
        event("file_created", 1, path="a.py"),
        event("error_occurred", 2, message="boom"),
        event("session_paused", 3),
        event("error_occurred", 4),
    ]
    service.sessions.handle_events(scope, number, batch)
    # The camelCase spelling names the same type (and is an error like the others).
    service.sessions.handle_events(scope, number, [raw_event(event_type="errorOccurred", sent_at=at(5), data={})])

    stats = service.sessions.get_stats(scope, number)
    assert stats.by_type == {"file_created": 1, "error_occurred": 3, "session_paused": 1}
    assert (stats.event_count, stats.errors, stats.tools) == (5, 3, {})


def test_first_and_last_sent_at_are_the_earliest_and_latest_not_the_first_and_last_recorded(
    service: Service, scope: Scope
) -> None:
    number = new_session(service, scope)
    service.sessions.handle_events(scope, number, [event("file_modified", 5_000), event("file_modified", 1_000.25)])
    service.sessions.handle_events(scope, number, [event("file_modified", 9_000.5), event("file_modified", 3_000)])
    stats = service.sessions.get_stats(scope, number)
    assert (stats.first_sent_at, stats.last_sent_at) == (
        SENT_AT_TIME + timedelta(milliseconds=1_000.25),
        SENT_AT_TIME + timedelta(milliseconds=9_000.5),
    )
    # Times are compared as instants: 00:30 at +01:00 is before every time above.
    service.sessions.handle_events(
        scope, number, [raw_event(event_type="file_deleted", sent_at="2026-01-01T00:30:00+01:00", data={})]
    )
    service.sessions.handle_events(scope, number, [event("file_modified", 2_000)])  # neither first nor last
    stats = service.sessions.get_stats(scope, number)
    assert (stats.first_sent_at, stats.last_sent_at) == (
        datetime(2025, 12, 31, 23, 30, tzinfo=UTC),
        SENT_AT_TIME + timedelta(milliseconds=9_000.5),
    )
    assert stats.event_count == 6


def test_a_result_completes_the_call_with_its_tool_use_id_and_adds_the_time_between(
    service: Service, scope: Scope
) -> None:
    number = new_session(service, scope)
    service.sessions.handle_events(
        scope,
        number,
        [
            call("Read", "u1", 0),
            call("Read", "u2", 10),
            call("Bash", "u3", 100.25),
            result("u1", 1.5, success=True),
            result("u2", 30.75, success=False),  # 20.75 ms, a failure
            # u3 never gets its result: a call, not a completion
        ],
    )
    stats = service.sessions.get_stats(scope, number)
    assert tools(stats) == {"Read": (2, 2, 1, 22.25), "Bash": (1, 0, 0, 0.0)}
    assert stats.by_type == {"tool_called": 3, "tool_result": 2}
    assert stats.errors == 0


def test_results_and_calls_that_pair_with_nothing_count_in_by_type_only(service: Service, scope: Scope) -> None:
    number = new_session(service, scope)
    batch = [
        call("Edit", "e1", 0),
        result("e1", 2, tool_name="Write"),  # completes Edit's call: a result's own tool_name is no key
        result("e1", 5, success=False),  # a second result for the same call completes nothing
        result("nomatch", 1, tool_name="Ghost"),  # no call with this id
        event("tool_called", 0, tool_use_id="n1"),  # no tool_name: nothing to count it under
        result("n1", 3),
        event("tool_called", 0, tool_name="Grep"),  # no tool_use_id: a call that nothing completes
        event("tool_result", 4, tool_name="Grep"),
        result("", 4),
        call(5, "i1", 0),  # a tool_name that is no string
        result("i1", 1),
        call({"name": "Nested"}, "i2", 0),
        result("i2", 1),
        call("Glob", 7, 0),  # a tool_use_id that is no string pairs with nothing
        result(7, 1),
        call("LS", "s1", 0),
        result("s1", 1, success="false"),  # only the boolean false is a failure
        call("LS", "s2", 0),
        result("s2", 2, success=None),
        call("LS", "s3", 0),
        result("s3", 3, success=0),
        result("r1", 0),  # a result recorded before its call (in the session's log) completes nothing
        call("Task", "r1", 0),
        event("file_modified", 0, tool_name="Edit", tool_use_id="e1"),  # tool keys on other types mean nothing
    ]
    service.sessions.handle_events(scope, number, batch)
    stats = service.sessions.get_stats(scope, number)
    assert tools(stats) == {
        "Edit": (1, 1, 0, 2.0),
        "Grep": (1, 0, 0, 0.0),
        "Glob": (1, 0, 0, 0.0),
        "LS": (3, 3, 0, 6.0),
        "Task": (1, 0, 0, 0.0),
    }
    assert stats.by_type == types_of(batch)
    assert stats.event_count == len(batch)


def open_calls(service: Service, number: int) -> dict[str, str]:
    rows = service.database.fetch_all(
        "SELECT tool_use_id, tool_name FROM session_stats_open_calls WHERE session_id = %s", (number,)
    )
    return {row["tool_use_id"]: row["tool_name"] for row in rows}


def test_a_call_waits_in_the_model_for_a_result_recorded_in_a_later_batch(service: Service, scope: Scope) -> None:
    number = new_session(service, scope)
    service.sessions.handle_events(scope, number, [call("Read", "c1", 0.125)])
    # Reading the stats means the projector has written the call (and its batch ended there).
    assert tools(service.sessions.get_stats(scope, number)) == {"Read": (1, 0, 0, 0.0)}
    assert open_calls(service, number) == {"c1": "Read"}

    service.sessions.handle_events(scope, number, [result("c1", 3.375, success=False)])
    assert tools(service.sessions.get_stats(scope, number)) == {"Read": (1, 1, 1, 3.25)}
    assert open_calls(service, number) == {}  # a completed call is not kept

    service.sessions.handle_events(scope, number, [result("c1", 9)])  # nor completed twice
    assert tools(service.sessions.get_stats(scope, number)) == {"Read": (1, 1, 1, 3.25)}


def test_sessions_sharing_a_tool_use_id_never_pair_with_each_other(service: Service, scope: Scope) -> None:
    a, b = new_session(service, scope), new_session(service, scope)
    for number, batch in (
        (a, [call("X", "u1", 0)]),
        (b, [result("u1", 5)]),  # a's call is open, but in another session
        (b, [call("Y", "u1", 1)]),
        (a, [result("u1", 2)]),
        (b, [result("u1", 4, success=False)]),
    ):
        service.sessions.handle_events(scope, number, batch)
    assert tools(service.sessions.get_stats(scope, a)) == {"X": (1, 1, 0, 2.0)}
    assert tools(service.sessions.get_stats(scope, b)) == {"Y": (1, 1, 1, 3.0)}


@pytest.fixture(params=STORES)
def stepped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stepped]:
    with stepped_service(request.param, tmp_path) as running:
        yield running


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_pairing_does_not_depend_on_where_the_projectors_batches_end(
    stepped: Stepped, scope: Scope, batch_size: int
) -> None:
    """The whole story is recorded first, then projected either one log event per batch (every
    call crosses a batch boundary before its result) or in one batch (both sessions together)."""
    service = stepped.service
    a, b = new_session(service, scope), new_session(service, scope)
    for number, batch in (
        (a, [call("X", "u1", 0), call("X", "u2", 0.5)]),
        (b, [result("u1", 5), call("Y", "u1", 1)]),
        (a, [result("u1", 2.25), event("error_occurred", 3)]),
        (b, [result("u1", 4, success=False), result("u1", 6)]),
        (a, [result("u2", 1.75), result("u2", 8)]),
    ):
        service.sessions.handle_events(scope, number, batch)
    projector = service.projectors["session_stats"]
    projector.batch_size = batch_size
    batches = 0
    while projector.process_batch():
        batches += 1
    assert projector.position() == projector.head()
    assert batches == (service.database.count_log_events_after(0) if batch_size == 1 else 1)

    stats_a, stats_b = service.sessions.get_stats(scope, a), service.sessions.get_stats(scope, b)
    assert tools(stats_a) == {"X": (2, 2, 0, 3.5)}
    assert tools(stats_b) == {"Y": (1, 1, 1, 3.0)}
    assert (stats_a.event_count, stats_a.errors, stats_b.event_count) == (6, 1, 4)
    assert open_calls(service, a) == open_calls(service, b) == {}


@pytest.mark.parametrize("rows_per_statement", [2, 500])
def test_what_a_batch_writes_does_not_depend_on_how_its_rows_are_cut_into_statements(
    stepped: Stepped, scope: Scope, rows_per_statement: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three sessions per batch: the first batch opens a call in each (upserts, inserted calls),
    the second closes them and opens another in one of them (deleted calls), in statements of
    2 rows or in one."""
    monkeypatch.setattr(session_stats, "_CHUNK", rows_per_statement)
    service = stepped.service
    projector = service.projectors["session_stats"]
    numbers = [new_session(service, scope) for _ in range(3)]
    for number in numbers:
        service.sessions.handle_events(scope, number, [call("Read", "c1", 0), call("Edit", "c2", 1)])
    projector.catch_up()
    assert [open_calls(service, n) for n in numbers] == [{"c1": "Read", "c2": "Edit"}] * 3

    for number in numbers:
        service.sessions.handle_events(scope, number, [result("c1", 2), result("c2", 4)])
    service.sessions.handle_events(scope, numbers[0], [call("Bash", "c1", 5)])  # an id used again
    projector.catch_up()
    assert [open_calls(service, n) for n in numbers] == [{"c1": "Bash"}, {}, {}]
    done = {"Read": (1, 1, 0, 2.0), "Edit": (1, 1, 0, 3.0)}
    assert [tools(service.sessions.get_stats(scope, n)) for n in numbers] == [
        {**done, "Bash": (1, 0, 0, 0.0)},
        done,
        done,
    ]
    assert [service.sessions.get_stats(scope, n).event_count for n in numbers] == [5, 4, 4]
