"""Group commit against real servers: concurrent calls share transactions, and each is answered
with exactly its own result; a call failing, another process writing the same session, a client
going away, or the database killing the pool's connections never cost another call anything."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import psycopg

from application.scope import Scope
from tests.conftest import POSTGRES_ADMIN_URL, ServerProcess, fresh_postgres_database, require_postgres
from tests.factories import wire_event
from tests.http.test_metrics import scrape, value

CALLS = "session_events_group_commit_calls"


def all_at_once(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Runs the calls in threads released together (so that they meet in the server), in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except Exception as error:  # reported by the assertions on `results`
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def post_event(base_url: str, token: str, session_id: int, event: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        return http.post(f"/api/sessions/{session_id}/events", json=event)


def transactions_and_calls(server: ServerProcess) -> tuple[float, float]:
    found = scrape(server)
    return value(found, f"{CALLS}_count"), value(found, f"{CALLS}_sum")


def test_concurrent_calls_on_one_session_share_transactions_each_answered_with_its_own_result(
    server: ServerProcess, client: httpx.Client, scope: Scope
) -> None:
    token = server.token(scope)
    sid = client.post("/api/sessions", json={}).json()["data"]["id"]
    ids = [str(uuid4()) for _ in range(40)]
    transactions_before, calls_before = transactions_and_calls(server)

    answers = all_at_once([lambda i=i: post_event(server.base_url, token, sid, wire_event(id=i)) for i in ids])

    assert [a.status_code for a in answers] == [200] * len(ids), [a for a in answers if a.status_code != 200]
    counts = sorted(a.json()["data"]["event_count"] for a in answers)
    assert counts == list(range(1, len(ids) + 1))  # each saw the session as its own event left it
    events = client.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]
    assert sorted(e["id"] for e in events) == sorted(ids)
    assert [e["sequence"] for e in events] == list(range(1, len(ids) + 1))
    transactions, calls = transactions_and_calls(server)
    assert calls - calls_before == len(ids)
    assert transactions - transactions_before < len(ids)  # some calls were saved together


def test_a_call_that_fails_in_a_group_fails_alone(server: ServerProcess, client: httpx.Client, scope: Scope) -> None:
    token = server.token(scope)
    mine = client.post("/api/sessions", json={}).json()["data"]["id"]
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.token(Scope(scope.account_id, 1))}"}
    ) as stranger:
        theirs = stranger.post("/api/sessions", json={}).json()["data"]["id"]
    targets = [mine] * 20 + [theirs] * 5 + [mine + 10**9] * 5
    answers = all_at_once([lambda s=s: post_event(server.base_url, token, s, wire_event()) for s in targets])
    assert [a.status_code for a in answers] == [200] * 20 + [404] * 10
    assert client.get(f"/api/sessions/{mine}").json()["data"]["event_count"] == 20


def test_a_client_that_goes_away_while_its_call_waits_has_it_recorded_once_or_not_at_all(
    server: ServerProcess, client: httpx.Client, scope: Scope
) -> None:
    token = server.token(scope)
    sid = client.post("/api/sessions", json={}).json()["data"]["id"]
    abandoned = [str(uuid4()) for _ in range(20)]
    kept = [str(uuid4()) for _ in range(20)]

    def send_and_hang_up(event_id: str) -> None:
        body = httpx.Request("POST", "http://x", json=wire_event(id=event_id)).read()
        head = (
            f"POST /api/sessions/{sid}/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port)) as raw:
            raw.sendall(head + body)
            raw.shutdown(socket.SHUT_RDWR)  # gone before the answer

    calls: list[Callable[[], Any]] = [lambda i=i: send_and_hang_up(i) for i in abandoned]
    calls += [lambda i=i: post_event(server.base_url, token, sid, wire_event(id=i)) for i in kept]
    results = all_at_once(calls)
    assert [r.status_code for r in results[len(abandoned) :]] == [200] * len(kept)
    time.sleep(1)  # what the server was still doing for the clients that left

    def recorded() -> list[str]:
        return [e["id"] for e in client.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]]

    before_retries = recorded()
    assert set(kept) <= set(before_retries)
    assert len(before_retries) == len(set(before_retries))  # nothing twice
    for event_id in abandoned:  # the clients come back and retry with the same ids
        retried = client.post(f"/api/sessions/{sid}/events", json=wire_event(id=event_id))
        assert retried.status_code == 200
    after = recorded()
    assert sorted(after) == sorted(kept + abandoned)
    assert client.get("/health").status_code == 200


def test_calls_from_two_processes_on_one_session_all_succeed_whatever_the_conflicts(tmp_path: Path) -> None:
    """Each process decides on its own cached copy; the other's writes make it conflict, and only
    the conflicting session's calls are decided again: nothing fails, nothing is lost or doubled."""
    require_postgres()
    with fresh_postgres_database() as url:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        first, second = ServerProcess(url, tmp_path / "a"), ServerProcess(url, tmp_path / "b")
        try:
            scope = Scope(7, 8)
            token = first.token(scope)
            with httpx.Client(base_url=first.base_url, headers={"Authorization": f"Bearer {token}"}) as http:
                sid = http.post("/api/sessions", json={}).json()["data"]["id"]
                ids = [str(uuid4()) for _ in range(60)]
                servers = [first, second] * 30
                answers = all_at_once(
                    [
                        lambda i=i, s=s: post_event(s.base_url, token, sid, wire_event(id=i))
                        for i, s in zip(ids, servers, strict=True)
                    ]
                )
                assert [a.status_code for a in answers] == [200] * len(ids)
                events = http.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]
            assert sorted(e["id"] for e in events) == sorted(ids)
            assert [e["sequence"] for e in events] == list(range(1, len(ids) + 1))
            conflicts = sum(value(scrape(s), "session_events_group_commit_conflicts_total") for s in (first, second))
            assert conflicts > 0  # the two processes did get in each other's way
        finally:
            first.stop()
            second.stop()


def test_connections_killed_while_idle_cost_no_request(tmp_path: Path) -> None:
    """The server terminates every connection of the service (as a restart or a failover does);
    the next requests, in every worker, still succeed: a dead connection is never handed out."""
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path, workers=2)
        try:
            token = server.token(Scope(5, 6))
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                sid = http.post("/api/sessions", json={}).json()["data"]["id"]
            for _ in range(20):  # warm both workers' pools (a new connection lands on either worker)
                assert post_event(server.base_url, token, sid, wire_event()).status_code == 200
            dbname = url.rsplit("/", 1)[1]
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (dbname,),
                ).fetchone()
                assert killed is not None and killed[0] > 2
            time.sleep(0.5)  # the backends are gone; the workers have not been told
            statuses = [post_event(server.base_url, token, sid, wire_event()).status_code for _ in range(20)]
            statuses += [
                httpx.get(f"{server.base_url}/api/sessions/{sid}/events", headers=headers).status_code
                for _ in range(10)
            ]
            assert statuses == [200] * 30
        finally:
            server.stop()
