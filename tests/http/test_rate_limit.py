"""SESSION_EVENTS_RATE_LIMIT against real processes: one count per token shared by every worker;
the (N+1)-th request of a minute is 429 with Retry-After, and nothing of it is stored."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from application.queries import EventQuery
from application.scope import Scope
from entrypoints.bootstrap import bootstrap
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres, settings_for, store_url
from tests.factories import wire_event

LIMIT = 12


def limited_server(url: str, tmp_path: Path, workers: int) -> ServerProcess:
    return ServerProcess(url, tmp_path, workers=workers, env={"SESSION_EVENTS_RATE_LIMIT": str(LIMIT)})


def the_limit_is_shared_and_refused_calls_store_nothing(server: ServerProcess, scope: Scope) -> None:
    headers = {"Authorization": f"Bearer {server.token(scope)}"}
    other = {"Authorization": f"Bearer {server.token(Scope(scope.account_id, scope.user_id + 1))}"}
    # Start early in a minute, so that all LIMIT + 1 requests fall in one fixed window.
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        sid = client.post("/api/sessions", json={}).json()["data"]["id"]  # request 1
    for n in range(2, LIMIT + 1):  # a new connection each time: spread over the workers
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            answer = client.post(f"/api/sessions/{sid}/events", json=wire_event(data={"n": n}))
            assert answer.status_code == 200, (n, answer.text)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        refused = client.post(f"/api/sessions/{sid}/events", json=wire_event(data={"n": "refused"}))
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert f"more than {LIMIT} requests a minute" in refused.json()["error_description"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert client.get(f"/api/sessions/{sid}/events").status_code == 429
    # Another token is counted apart; it sees that the refused event was not stored.
    with httpx.Client(base_url=server.base_url, headers=other, timeout=30) as client:
        assert client.get("/api/sessions").status_code == 200
    database_events = _events_of(server, scope, sid)
    assert len(database_events) == LIMIT - 1
    assert all("refused" not in data for data in database_events)


def _events_of(server: ServerProcess, scope: Scope, sid: int) -> list[str]:
    """What the store recorded, read beneath the HTTP layer (the token is over its limit)."""
    service = bootstrap(settings_for(server.env["DATABASE_URL"]), run_projection=False)
    try:
        return [event.data_json for event in service.sessions.get_events(scope, sid, EventQuery(limit=1000))]
    finally:
        service.close()


def test_rate_limit_on_postgres_is_shared_by_two_workers(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = limited_server(url, tmp_path, workers=2)
        try:
            the_limit_is_shared_and_refused_calls_store_nothing(server, Scope(81, 82))
        finally:
            server.stop()


def test_rate_limit_on_sqlite(tmp_path: Path) -> None:
    with store_url("sqlite", tmp_path) as url:
        server = limited_server(url, tmp_path, workers=1)
        try:
            the_limit_is_shared_and_refused_calls_store_nothing(server, Scope(91, 92))
        finally:
            server.stop()
