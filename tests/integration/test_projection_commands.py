"""`session-events projections rebuild|status`, on each store, while the service keeps projecting."""

from __future__ import annotations

import json

import pytest

from application.queries import EventQuery
from application.scope import Scope
from entrypoints import cli
from entrypoints.bootstrap import Service


def test_rebuild_reproduces_the_read_model_and_status_reports_no_lag(
    service: Service, scope: Scope, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    number = service.sessions.create_session(scope).number
    batch = [
        {"event_type": b'"tool_called"', "sent_at": f'"2026-01-01T00:00:0{k % 10}Z"'.encode(), "data": b'{"k": 1.5}'}
        for k in range(30)
    ]
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
