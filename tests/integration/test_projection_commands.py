"""`session-events projections rebuild|status`, on each store, while the service keeps projecting."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from adapters.readmodel import views
from application.errors import StoreUnavailable
from application.queries import EventQuery
from application.scope import Scope
from entrypoints import cli
from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import STORES, settings_for, store_url
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
    """The running service keeps projecting while another process rebuilds. After each reset the
    rebuild waits until a read that began after the reset has answered, so reads do land while
    the read model is being rebuilt."""
    number = service.sessions.create_session(scope).number
    batch = [raw_event()] * 300
    service.sessions.handle_events(scope, number, batch)
    rebuilder = bootstrap(settings_for(database_url), run_projection=False)
    done = threading.Event()
    failures: list[BaseException] = []
    reads = threading.Condition()
    started: list[int] = []  # the number of each read, as it begins
    answered: list[int] = []  # the number of each read, once it has answered
    reads_after_reset = 0

    def rebuild() -> None:
        nonlocal reads_after_reset
        try:
            for _ in range(3):
                rebuilder.projection.reset()
                with reads:
                    after = len(started)
                    if reads.wait_for(lambda after=after: any(n >= after for n in answered), timeout=30):
                        reads_after_reset += 1
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
        with reads:
            read_number = len(started)
            started.append(read_number)
        try:
            sizes.append(len(service.sessions.get_events(scope, number, EventQuery(limit=1000))))
        except StoreUnavailable:
            sizes.append(-1)
        with reads:
            answered.append(read_number)
            reads.notify_all()
    assert done.wait(5), "the rebuild did not finish"
    thread.join()
    rebuilder.close()
    assert failures == []
    assert reads_after_reset == 3
    assert set(sizes) <= {300, -1}, sorted(set(sizes))
    assert len(service.sessions.get_events(scope, number, EventQuery(limit=1000))) == 300


@pytest.mark.parametrize("kind", STORES)
def test_a_read_while_a_rebuild_is_part_way_is_503_never_partial(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step by step, with no other projector: after the reset and after each batch of the
    rebuild the read model is partial, and a read must say 503 rather than show it."""
    monkeypatch.setattr(views, "CATCH_UP_TIMEOUT", 0.2)  # how long a read waits for the projection
    scope = Scope(1, 2)
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        try:
            number = service.sessions.create_session(scope).number
            service.sessions.handle_events(scope, number, [raw_event()] * 300)

            def read() -> int:
                return len(service.sessions.get_events(scope, number, EventQuery(limit=1000)))

            projection = service.projection
            projection.catch_up()
            assert read() == 300
            projection.batch_size = 100
            projection.reset()
            for _ in range(3):
                status = projection.status()
                assert status.behind > 0, status  # part way: the read model lacks events
                with pytest.raises(StoreUnavailable):
                    read()
                assert projection.process_batch() > 0
            projection.catch_up()
            assert read() == 300
        finally:
            service.close()
