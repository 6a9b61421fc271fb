"""Several worker processes on PostgreSQL: one projects, every one reads its writes."""

from __future__ import annotations

from pathlib import Path

import httpx

from application.scope import Scope
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres
from tests.factories import wire_event


def test_two_workers_share_the_log_and_read_their_writes(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path, workers=2)
        try:
            headers = {"Authorization": f"Bearer {server.token(Scope(3, 4))}"}
            sid = None
            for k in range(1, 31):
                # A new connection each time, so that requests spread over both workers.
                with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                    if sid is None:
                        sid = client.post("/api/sessions", json={}).json()["data"]["id"]
                    assert client.post(f"/api/sessions/{sid}/events", json=wire_event()).status_code == 200
                with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
                    events = client.get(f"/api/sessions/{sid}/events?limit=1000").json()["data"]
                    assert [e["sequence"] for e in events] == list(range(1, k + 1))
        finally:
            server.stop()
