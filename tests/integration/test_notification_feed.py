"""The notification feed on each store: ready only once readable, replay, pruning."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.notifications.feed import NotificationFeed
from application.notifications import Cursor
from application.queries import EventQuery
from application.scope import Scope
from entrypoints.bootstrap import bootstrap
from tests.conftest import STORES, settings_for, store_url
from tests.factories import raw_event

EVENT = raw_event(event_type="session_status_changed", data={"new_status": "failed"})


@pytest.mark.parametrize("kind", STORES)
def test_feed_readiness_replay_and_pruning(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        service.log.projects_session_events = False  # its projector alone makes events readable
        try:
            mine, other = Scope(1, 2), Scope(1, 3)
            feed = NotificationFeed(service.database)
            number = service.sessions.create_session(mine).number
            service.sessions.create_session(other)
            service.sessions.handle_events(mine, number, [EVENT, EVENT])
            assert feed.ready_after(Cursor(0)) == []  # not readable yet: the projection has not run
            service.projection.catch_up()
            [events, updated] = feed.replay(mine, Cursor(0), 10) or []
            assert (events.kind, dict(events.payload)) == ("session_events", {"session_id": number, "event_count": 2})
            assert (updated.kind, updated.payload["status"]) == ("session_updated", "failed")
            assert feed.replay(other, Cursor(0), 10) == []
            assert feed.replay(mine, events.cursor, 10) == [updated]
            assert feed.replay(mine, Cursor(10**9), 10) is None  # an id from another log
            assert len(service.sessions.get_events(mine, number, EventQuery())) == 2

            horizon = feed.prune(timedelta(0))
            assert horizon == events.position
            assert feed.replay(mine, Cursor(0), 10) is None  # pruned: the client must re-query
            assert feed.replay(mine, Cursor(horizon), 10) == []
        finally:
            service.close()
