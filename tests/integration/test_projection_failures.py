"""A read model that raises on an event is seen, not silent (issue 8), on each store.

`session_stats` is made to raise on a "poison" event (one whose data holds a marker), in a
service that projects only when the test says so. Then: the projection stops at that event,
keeping every event before it and none after (never skipping it), and says so in its status,
in the log and in `projections status`; reads of `session_events` keep answering, while a stats
read that needs the failed position answers at once with `ReadModelFailed` (HTTP 503); once the
read model no longer raises, a process start (which retries a failed projection) or a rebuild
brings it back, every event counted exactly once."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.readmodel.projection import FAILED, LIVE, ProjectionFailed, Projector
from adapters.readmodel.session_stats import SessionStatsModel
from application.errors import ReadModelFailed
from application.queries import EventQuery, SessionStats
from application.scope import Scope
from entrypoints import cli
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.http.app import create_app
from tests.conftest import STORES, settings_for
from tests.integration.stepping import Stepped, stepped_service
from tests.integration.test_session_stats import call, event, result, tools

POISON = "poison-pill"
ERROR = "ValueError: cannot count this event"


class Poison:
    """While active, `session_stats` raises on every event whose data holds the marker (as a
    bug in a read model would); `cure()` is the fix being deployed."""

    def __init__(self) -> None:
        self.active = True

    def cure(self) -> None:
        self.active = False


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> Poison:
    poison = Poison()
    count = SessionStatsModel._count

    def count_unless_poisoned(session: Any, event_type: str, sent_at: datetime, data_json: str) -> None:
        if poison.active and POISON in data_json:
            raise ValueError("cannot count this event")
        count(session, event_type, sent_at, data_json)

    monkeypatch.setattr(SessionStatsModel, "_count", staticmethod(count_unless_poisoned))
    return poison


@pytest.fixture(params=STORES)
def stepped(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stepped]:
    with stepped_service(request.param, tmp_path) as running:
        yield running


@dataclass(frozen=True)
class Story:
    clean: int
    """A session all of whose events come before the poison."""
    poisoned: int
    """A session with events before the poison (in its batch), the poison, and events after it
    (in that batch and in a later one)."""
    poison_position: int
    last_before_poison: int


def record_clean_session(service: Service, scope: Scope) -> int:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(scope, number, [call("Read", "b1", 0), result("b1", 1)])
    return number


def record_poisoned_session(service: Service, scope: Scope) -> int:
    number = service.sessions.create_session(scope).number
    service.sessions.handle_events(
        scope,
        number,
        [
            call("Read", "u1", 0),
            event("error_occurred", 1),
            event("file_modified", 2, marker=POISON),
            result("u1", 2.5),  # completes a call projected before the poison
            call("Bash", "u2", 3),
        ],
    )
    service.sessions.handle_events(scope, number, [result("u2", 4.25, success=False), event("file_created", 5)])
    return number


def positions(projector: Projector) -> tuple[int, int]:
    """The log positions of the poison and of the event just before it."""
    batch, _ = projector.read_log(0, 10_000)
    for before, log_event in itertools.pairwise(batch):
        recorded = log_event.recorded
        if recorded is not None and POISON in recorded.data:
            return log_event.position, before.position
    raise AssertionError("no poison in the log")


def record_story(service: Service, scope: Scope) -> Story:
    clean = record_clean_session(service, scope)
    poisoned = record_poisoned_session(service, scope)
    return Story(clean, poisoned, *positions(service.projectors["session_stats"]))


def stats_rows(service: Service, number: int) -> tuple[int, dict[str, int], dict[str, str]]:
    """What the `session_stats` tables hold for a session: (event_count, by_type, open calls)."""
    db = service.database
    rows = db.fetch_all("SELECT event_count, by_type FROM session_stats WHERE session_id = %s", (number,))
    calls = db.fetch_all("SELECT tool_use_id, tool_name FROM session_stats_open_calls WHERE session_id = %s", (number,))
    open_calls = {row["tool_use_id"]: row["tool_name"] for row in calls}
    return (int(rows[0]["event_count"]), json.loads(rows[0]["by_type"]), open_calls) if rows else (0, {}, open_calls)


def assert_counted_exactly_once(service: Service, scope: Scope, story: Story) -> None:
    """What the story's events imply, every one counted once."""
    poisoned = service.sessions.get_stats(scope, story.poisoned)
    assert poisoned.by_type == {
        "tool_called": 2,
        "error_occurred": 1,
        "file_modified": 1,
        "tool_result": 2,
        "file_created": 1,
    }
    assert (poisoned.event_count, poisoned.errors) == (7, 1)
    assert tools(poisoned) == {"Read": (1, 1, 0, 2.5), "Bash": (1, 1, 1, 1.25)}
    clean = service.sessions.get_stats(scope, story.clean)
    assert (clean.event_count, tools(clean)) == (2, {"Read": (1, 1, 0, 1.0)})
    assert stats_rows(service, story.poisoned)[2] == {}


@pytest.fixture
def failed(stepped: Stepped, scope: Scope, poison: Poison) -> Story:
    """The story recorded, `session_events` caught up, and `session_stats` failed on the poison."""
    story = record_story(stepped.service, scope)
    stepped.service.projectors["session_events"].catch_up()
    with pytest.raises(ProjectionFailed):
        stepped.service.projectors["session_stats"].catch_up()
    return story


def test_the_projection_stops_at_the_poison_keeping_every_event_before_it(
    stepped: Stepped, scope: Scope, poison: Poison, caplog: pytest.LogCaptureFixture
) -> None:
    service = stepped.service
    story = record_story(service, scope)
    projector = service.projectors["session_stats"]
    with caplog.at_level(logging.ERROR, logger="session_events.projection"), pytest.raises(ProjectionFailed) as failure:
        projector.catch_up()  # one batch: the whole log
    assert (failure.value.name, failure.value.position, failure.value.error) == (
        "session_stats",
        story.poison_position,
        ERROR,
    )
    assert any(
        r.levelno == logging.ERROR and f"session_stats failed at log position {story.poison_position}" in r.getMessage()
        for r in caplog.records
    )

    status = projector.status()
    assert (status.state, status.failed_position, status.error) == (FAILED, story.poison_position, ERROR)
    assert status.position == story.last_before_poison
    assert status.behind == 5 == service.database.count_log_events_after(story.last_before_poison)
    # Everything before the poison is projected, nothing from it on.
    assert stats_rows(service, story.clean) == (2, {"tool_called": 1, "tool_result": 1}, {})
    assert stats_rows(service, story.poisoned) == (2, {"tool_called": 1, "error_occurred": 1}, {"u1": "Read"})

    # It stays there: never skipping the poison, whether asked again or retried unfixed.
    for _ in range(2):
        with pytest.raises(ProjectionFailed):
            projector.process_batch()
        assert projector.status().position == story.last_before_poison
    assert projector.retry() is True
    with pytest.raises(ProjectionFailed) as again:
        projector.catch_up()
    assert again.value.position == story.poison_position
    assert projector.status().position == story.last_before_poison
    assert stats_rows(service, story.poisoned)[0] == 2


def test_event_reads_keep_answering_and_stats_reads_fail_at_once(
    stepped: Stepped, scope: Scope, failed: Story, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = stepped.service
    events = service.sessions.get_events(scope, failed.poisoned, EventQuery())
    assert len(events) == 7
    assert service.sessions.get_session(scope, failed.poisoned).event_count == 7

    def no_waiting(timeout: float) -> None:
        raise AssertionError("a read of a failed projection waited for it")

    monkeypatch.setattr(service.projectors["session_stats"].progress, "wait", no_waiting)
    # Decided: a failed read model answers no read that needs a position past its failure,
    # whichever session it is about.
    for number in (failed.poisoned, failed.clean):
        with pytest.raises(ReadModelFailed) as refused:
            service.sessions.get_stats(scope, number)
        assert (refused.value.projection, refused.value.position) == ("session_stats", failed.poison_position)
        assert ERROR in str(refused.value)


def test_a_stats_read_that_began_before_the_poison_was_recorded_still_answers(
    stepped: Stepped, scope: Scope, poison: Poison, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its head is before the failure: the projection reaches it, then fails further on. The
    read only looks again once the failure is recorded, so it sees both (a position past its
    head, and the failure)."""
    service = stepped.service
    projector = service.projectors["session_stats"]
    clean = record_clean_session(service, scope)
    head_taken, failure_recorded = threading.Event(), threading.Event()
    head = projector.head

    def head_then_tell() -> int:
        position = head()
        head_taken.set()
        return position

    def wait_for_the_failure(timeout: float) -> None:
        failure_recorded.wait(10)

    monkeypatch.setattr(projector, "head", head_then_tell)
    monkeypatch.setattr(projector.progress, "wait", wait_for_the_failure)
    answers: list[SessionStats | BaseException] = []

    def read() -> None:
        try:
            answers.append(service.sessions.get_stats(scope, clean))
        except BaseException as error:
            answers.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    assert head_taken.wait(10)  # the read waits for the projector, which has not run yet
    poisoned = record_poisoned_session(service, scope)
    with pytest.raises(ProjectionFailed):
        projector.catch_up()
    failure_recorded.set()
    reader.join(10)
    assert len(answers) == 1 and isinstance(answers[0], SessionStats), answers
    assert (answers[0].event_count, tools(answers[0])) == (2, {"Read": (1, 1, 0, 1.0)})
    with pytest.raises(ReadModelFailed):
        service.sessions.get_stats(scope, poisoned)


def test_projections_status_exits_1_and_shows_the_failure(
    stepped: Stepped, failed: Story, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", stepped.url)
    assert cli.main(["projections", "status"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("session_stats "))
    assert f" {failed.last_before_poison} " in line and FAILED in line
    assert f"failed at log position {failed.poison_position}: {ERROR}" in out

    assert cli.main(["projections", "status", "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    by_name = {p["name"]: p for p in report["projections"]}
    stats = by_name["session_stats"]
    assert (stats["state"], stats["failed_position"], stats["error"]) == (FAILED, failed.poison_position, ERROR)
    assert (stats["position"], stats["behind"]) == (failed.last_before_poison, 5)
    assert (by_name["session_events"]["state"], by_name["session_events"]["error"]) == (LIVE, None)


def test_once_fixed_a_process_start_retries_and_counts_every_event_once(
    stepped: Stepped, scope: Scope, failed: Story, poison: Poison, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison.cure()
    restarted = bootstrap(settings_for(stepped.url))  # its projection worker retries the failure
    try:
        # Until the worker (a thread of its own) has retried, reads still answer ReadModelFailed:
        # wait for it to reach the head of the log.
        projector = restarted.projectors["session_stats"]
        head, deadline = projector.head(), time.monotonic() + 30
        while projector.progress.position < head:
            assert time.monotonic() < deadline, "the restarted worker never caught up"
            projector.progress.wait(0.1)
        assert_counted_exactly_once(restarted, scope, failed)
    finally:
        restarted.close()
    status = stepped.service.projectors["session_stats"].status()
    assert (status.state, status.error, status.failed_position) == (LIVE, None, None)
    assert status.position == status.head and status.behind == 0
    monkeypatch.setenv("DATABASE_URL", stepped.url)
    assert cli.main(["projections", "status"]) == 0


def test_once_fixed_a_rebuild_clears_the_failure(
    stepped: Stepped, scope: Scope, failed: Story, poison: Poison, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", stepped.url)
    poison.cure()
    assert cli.main(["projections", "rebuild", "session_stats", "--quiet"]) == 0
    status = stepped.service.projectors["session_stats"].status()
    assert (status.state, status.error, status.failed_position) == (LIVE, None, None)
    assert status.position == status.head
    assert_counted_exactly_once(stepped.service, scope, failed)
    assert stepped.service.projectors["session_stats"].process_batch() == 0  # live, and nothing left to do


def test_a_rebuild_that_meets_the_poison_fails_clearly_and_leaves_the_live_model(
    stepped: Stepped,
    scope: Scope,
    failed: Story,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = stepped.service
    before = stats_rows(service, failed.poisoned), stats_rows(service, failed.clean)
    monkeypatch.setenv("DATABASE_URL", stepped.url)
    assert cli.main(["projections", "rebuild", "session_stats", "--quiet"]) == 1
    assert f"failed at log position {failed.poison_position}: {ERROR}" in capsys.readouterr().err
    status = service.projectors["session_stats"].status()
    assert (status.state, status.failed_position, status.position) == (
        FAILED,
        failed.poison_position,
        failed.last_before_poison,
    )
    assert (stats_rows(service, failed.poisoned), stats_rows(service, failed.clean)) == before


def test_a_failed_read_model_answers_503_naming_it_while_events_answer_200(
    stepped: Stepped, scope: Scope, failed: Story
) -> None:
    token = stepped.service.tokens.issue(scope).secret
    with TestClient(create_app(stepped.service)) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        refused = http.get(f"/api/sessions/{failed.poisoned}/stats")
        assert refused.status_code == 503
        assert refused.headers["retry-after"]
        body = refused.json()
        assert set(body) == {"error", "error_description"} and body["error"] == "read_model_failed"
        assert f"session_stats read model failed at log position {failed.poison_position}" in body["error_description"]
        assert ERROR in body["error_description"]

        events = http.get(f"/api/sessions/{failed.poisoned}/events")
        assert events.status_code == 200 and len(events.json()["data"]) == 7
