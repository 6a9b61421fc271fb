"""`session-events projections list|rebuild|status`, on each store, while the service keeps
projecting: rebuilds are blue/green (reads answer from the live model throughout), a rebuilt
model equals the live one row for row, and an interrupted rebuild leaves the live one alone."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from adapters.readmodel.rebuild import GENERATION_MARK, Rebuild, RebuildInProgress, lock_name
from application.queries import EventQuery, SessionStats
from application.scope import Scope
from entrypoints import cli
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import settings_for
from tests.factories import raw_event

TABLES = {
    "session_events": "session_id, sequence",
    "session_stats": "session_id",
    "session_stats_open_calls": "session_id, tool_use_id",
}


def session_with_tools(service: Service, scope: Scope, events: int) -> int:
    """A session whose events exercise both read models: tool calls and results, errors."""
    number = service.sessions.create_session(scope).number
    batch = []
    for k in range(events):
        second = f"2026-01-01T00:{k // 60 % 60:02d}:{k % 60:02d}.{k % 7}Z"
        if k % 3 == 0:
            batch.append(
                raw_event(
                    event_type="tool_called", sent_at=second, data={"tool_name": f"T{k % 4}", "tool_use_id": f"u{k}"}
                )
            )
        elif k % 3 == 1:
            batch.append(
                raw_event(
                    event_type="tool_result", sent_at=second, data={"tool_use_id": f"u{k - 1}", "success": k % 2 == 0}
                )
            )
        else:
            batch.append(
                raw_event(
                    event_type="error_occurred" if k % 5 == 0 else "file_modified",
                    sent_at=second,
                    data={"n": k, "x": 1.0},
                )
            )
        if len(batch) == 1000:
            service.sessions.handle_events(scope, number, batch)
            batch = []
    if batch:
        service.sessions.handle_events(scope, number, batch)
    return number


def all_rows(service: Service) -> dict[str, list[dict[str, Any]]]:
    db = service.database
    return {
        table: [dict(row) for row in db.fetch_all(f"SELECT * FROM {table} ORDER BY {order}")]
        for table, order in TABLES.items()
    }


def test_list_names_every_projection(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["projections", "list"]) == 0
    assert capsys.readouterr().out.split() == ["session_events", "session_stats"]


def test_a_rebuilt_model_equals_the_live_one_row_for_row(
    service: Service, scope: Scope, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    number = session_with_tools(service, scope, 3000)
    service.sessions.get_events(scope, number, EventQuery())  # both read models have caught up:
    stats_before = service.sessions.get_stats(scope, number)
    before = all_rows(service)
    assert len(before["session_events"]) >= 3000

    assert cli.main(["projections", "rebuild", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt session_events" in out and "rebuilt session_stats" in out

    service.sessions.get_events(scope, number, EventQuery())
    assert service.sessions.get_stats(scope, number) == stats_before
    after = all_rows(service)
    for table in TABLES:
        assert after[table] == before[table], table
    assert not service.database.tables_named_like("session_events" + GENERATION_MARK)

    assert cli.main(["projections", "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    by_name = {p["name"]: p for p in report["projections"]}
    assert set(by_name) == {"session_events", "session_stats"}
    for status in by_name.values():
        assert status["state"] == "live" and status["error"] is None
    assert cli.main(["projections", "status"]) == 0
    assert "session_stats" in capsys.readouterr().out


def test_reads_answer_complete_from_the_live_model_throughout_a_rebuild(
    service: Service, scope: Scope, database_url: str
) -> None:
    """The running service keeps projecting and serving while another process rebuilds both
    read models. After each batch the rebuild waits until a read that began after that batch
    has answered, so reads really do land while the new generation is partial."""
    number = session_with_tools(service, scope, 600)
    expected_events = len(service.sessions.get_events(scope, number, EventQuery(limit=1000)))
    expected_stats = service.sessions.get_stats(scope, number)
    rebuilder = bootstrap(settings_for(database_url), run_projection=False)
    reads = threading.Condition()
    started: list[int] = []
    answered: list[int] = []
    reads_during_rebuild = 0
    done = threading.Event()
    failures: list[BaseException] = []

    def wait_for_a_read(_: int) -> None:
        nonlocal reads_during_rebuild
        with reads:
            after = len(started)
            if reads.wait_for(lambda: any(n >= after for n in answered), timeout=30):
                reads_during_rebuild += 1

    def rebuild() -> None:
        try:
            for name in ("session_events", "session_stats"):
                projector = rebuilder.projectors[name]
                Rebuild(projector.model, rebuilder.log, rebuilder.database, live=projector, batch_size=100).run(
                    wait_for_a_read
                )
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=rebuild)
    thread.start()
    seen: list[tuple[int, SessionStats]] = []
    deadline = time.monotonic() + 120
    while not done.is_set() and time.monotonic() < deadline:
        with reads:
            read_number = len(started)
            started.append(read_number)
        events = len(service.sessions.get_events(scope, number, EventQuery(limit=1000)))
        seen.append((events, service.sessions.get_stats(scope, number)))
        with reads:
            answered.append(read_number)
            reads.notify_all()
    assert done.wait(5), "the rebuild did not finish"
    thread.join()
    rebuilder.close()
    assert failures == []
    assert reads_during_rebuild >= 10  # at least one read per batch of the new generations
    assert {events for events, _ in seen} == {expected_events}
    assert all(stats == expected_stats for _, stats in seen)


def test_an_interrupted_rebuild_leaves_the_live_model_and_a_rerun_works(
    service: Service, scope: Scope, database_url: str
) -> None:
    number = session_with_tools(service, scope, 300)
    service.sessions.get_stats(scope, number)  # both read models have caught up:
    service.sessions.get_events(scope, number, EventQuery())
    before = all_rows(service)
    projector = service.projectors["session_events"]
    interrupted = Rebuild(projector.model, service.log, service.database, live=projector, batch_size=50)

    def interrupt(_: int) -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, part way

    with pytest.raises(KeyboardInterrupt):
        interrupted.run(interrupt)
    assert service.database.tables_named_like("session_events" + GENERATION_MARK)  # left behind
    assert all_rows(service) == before
    assert len(service.sessions.get_events(scope, number, EventQuery(limit=1000))) == 300

    Rebuild(projector.model, service.log, service.database, live=projector).run()
    assert not service.database.tables_named_like("session_events" + GENERATION_MARK)
    assert all_rows(service)["session_events"] == before["session_events"]


def test_two_rebuilds_of_one_model_never_run_at_once(service: Service) -> None:
    projector = service.projectors["session_stats"]
    with service.database.named_lock(lock_name("session_stats"), wait=True):
        with pytest.raises(RebuildInProgress):
            Rebuild(projector.model, service.log, service.database, live=projector).run()
        assert [s.state for s in service.projection_statuses() if s.name == "session_stats"] == ["rebuilding"]


def test_an_unknown_projection_is_refused(monkeypatch: pytest.MonkeyPatch, database_url: str, capsys: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["projections", "rebuild", "nope"]) == 2
    assert "no such projection: nope" in capsys.readouterr().err


def test_events_recorded_during_a_rebuild_are_in_the_model_it_swaps_in(
    service: Service, scope: Scope, database_url: str
) -> None:
    """The live projector moves on while the new generation catches up; the swap brings the new
    generation up to the live position inside its transaction, so nothing is lost or doubled."""
    number = session_with_tools(service, scope, 400)
    rebuilder = bootstrap(settings_for(database_url), run_projection=False)
    written = 0

    def write_more(_: int) -> None:
        nonlocal written
        if written >= 20:  # then let the new generation catch up
            return
        service.sessions.handle_events(scope, number, [raw_event(event_type="tool_called", data={"tool_name": "W"})])
        written += 1
        service.sessions.get_events(scope, number, EventQuery(limit=1))  # the live model has it

    try:
        for name in ("session_events", "session_stats"):
            projector = rebuilder.projectors[name]
            Rebuild(projector.model, rebuilder.log, rebuilder.database, live=projector, batch_size=50).run(write_more)
    finally:
        rebuilder.close()
    assert written >= 10
    events = service.sessions.get_events(scope, number, EventQuery(limit=1000))
    assert sorted(e.sequence for e in events) == list(range(1, 400 + written + 1))
    stats = service.sessions.get_stats(scope, number)
    assert stats.event_count == 400 + written
    assert stats.tools["W"].calls == written
