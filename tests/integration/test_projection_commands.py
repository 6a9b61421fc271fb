"""`session-events projections rebuild|status`, on each store, while the service keeps projecting."""

from __future__ import annotations

import json
import threading
import time

import pytest

from adapters.settings import StoreSettings
from application.errors import StoreUnavailable
from application.queries import EventQuery
from application.scope import Scope
from entrypoints import cli
from entrypoints.bootstrap import Service, bootstrap
from tests.factories import raw_event


def test_rebuild_reproduces_the_read_model_and_status_reports_no_lag(
    service: Service, scope: Scope, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    number = service.sessions.create_session(scope).number
    batch = [raw_event(sent_at=f"2026-01-01T00:00:0{k % 10}Z", data={"k": 1.5}) for k in range(30)]
    service.sessions.handle_events(scope, number, batch)
    before = service.sessions.get_events(scope, number, EventQuery(limit=1000))

    assert cli.main(["projections", "rebuild", "--quiet"]) == 0
    assert "rebuilt session_events" in capsys.readouterr().out

    after = service.sessions.get_events(scope, number, EventQuery(limit=1000))
    assert after == before
    assert cli.main(["projections", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status["name"] == "session_events" and status["behind"] == 0 and status["position"] == status["head"]
    assert cli.main(["projections", "status"]) == 0
    assert "session_events" in capsys.readouterr().out


def test_reads_during_a_rebuild_are_complete_or_503_never_partial(
    service: Service, scope: Scope, database_url: str
) -> None:
    number = service.sessions.create_session(scope).number
    batch = [raw_event()] * 300
    service.sessions.handle_events(scope, number, batch)
    rebuilder = bootstrap(StoreSettings.from_url(database_url), run_projection=False, create_tables=False)
    done = threading.Event()
    failures: list[BaseException] = []

    def rebuild() -> None:
        try:
            for _ in range(3):
                rebuilder.projection.reset()
                rebuilder.projection.catch_up()
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=rebuild)
    thread.start()
    sizes = []
    deadline = time.monotonic() + 60
    while not done.is_set() and time.monotonic() < deadline:
        try:
            sizes.append(len(service.sessions.get_events(scope, number, EventQuery(limit=1000))))
        except StoreUnavailable:
            sizes.append(-1)
    assert done.wait(5), "the rebuild did not finish"
    thread.join()
    rebuilder.close()
    assert failures == []
    assert set(sizes) <= {300, -1}, sorted(set(sizes))
    assert len(service.sessions.get_events(scope, number, EventQuery(limit=1000))) == 300
