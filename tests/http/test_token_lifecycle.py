"""The token lifecycle against real processes: `tokens create --name/--expires-at`, `tokens list`,
`tokens revoke` (refused by every worker within a second, its open streams closed), bad ids."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from application.scope import Scope
from tests.conftest import ServerProcess, fresh_postgres_database, require_postgres, store_url
from tests.http.sse import StreamReader

REVOCATION_DEADLINE = 1.0
"""The contract: from one second after `tokens revoke` returns, no process accepts the token."""


def cli(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", *args],
        cwd=server.workdir,
        env=server.env,
        capture_output=True,
        text=True,
        check=check,
    )


def create(server: ServerProcess, scope: Scope, *options: str) -> tuple[int, str]:
    """A token made by the real command: its id (from `tokens list --json`) and the token."""
    args = ["--account-id", str(scope.account_id), "--user-id", str(scope.user_id)]
    token = cli(server, "tokens", "create", *args, *options).stdout.strip().splitlines()[-1]
    listed = listing(server, scope.account_id)
    return max(t["id"] for t in listed), token


def listing(server: ServerProcess, account_id: int) -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = json.loads(
        cli(server, "tokens", "list", "--json", "--account-id", str(account_id)).stdout
    )["tokens"]
    return tokens


def statuses_on_fresh_connections(server: ServerProcess, token: str, requests: int = 20) -> list[int]:
    """One request per new connection, so that they spread over the worker processes."""
    answers = []
    for _ in range(requests):
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answers.append(client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"}).status_code)
    return answers


def revocation_reaches_every_process(server: ServerProcess, scope: Scope, other: Scope) -> None:
    token_id, token = create(server, scope, "--name", "laptop")
    _, kept = create(server, other)
    assert statuses_on_fresh_connections(server, token) == [200] * 20  # now known (cached) by every worker
    readers = [StreamReader(server.base_url, token) for _ in range(4)]
    bystander = StreamReader(server.base_url, kept)
    try:
        revoked = cli(server, "tokens", "revoke", str(token_id))
        assert f"revoked token {token_id} 'laptop'" in revoked.stdout
        time.sleep(REVOCATION_DEADLINE)
        assert statuses_on_fresh_connections(server, token) == [401] * 20
        for reader in readers:
            assert reader.ended.wait(10), "a stream of the revoked token stayed open"
        assert statuses_on_fresh_connections(server, kept, 4) == [200] * 4
        assert not bystander.ended.is_set()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answer = client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
        assert answer.json() == {"error": "invalid_token", "error_description": "token revoked"}
        assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        again = cli(server, "tokens", "revoke", str(token_id))
        assert "was already revoked" in again.stdout
    finally:
        for reader in [*readers, bystander]:
            reader.close()


def test_revoked_on_postgres_every_worker_refuses_it_and_closes_its_streams(tmp_path: Path) -> None:
    require_postgres()
    with fresh_postgres_database() as url:
        server = ServerProcess(url, tmp_path, workers=2)
        try:
            revocation_reaches_every_process(server, Scope(61, 62), Scope(63, 64))
        finally:
            server.stop()


def test_revoked_on_sqlite_the_server_refuses_it_and_closes_its_streams(tmp_path: Path) -> None:
    with store_url("sqlite", tmp_path) as url:
        server = ServerProcess(url, tmp_path)
        try:
            revocation_reaches_every_process(server, Scope(71, 72), Scope(73, 74))
        finally:
            server.stop()


def test_a_websocket_of_a_revoked_token_is_closed_with_4401(server: ServerProcess, scope: Scope) -> None:
    token_id, token = create(server, scope)
    ws_url = server.base_url.replace("http", "ws") + f"/api/ws?token={token}"

    async def revoke_while_open() -> tuple[int | None, str | None]:
        async with websockets.connect(ws_url) as socket:
            await asyncio.to_thread(cli, server, "tokens", "revoke", str(token_id))
            deadline = time.monotonic() + 15  # keep-alives come every second while it stays open
            while time.monotonic() < deadline:
                try:
                    await asyncio.wait_for(socket.recv(), 10)
                except websockets.ConnectionClosed as closed:
                    return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, None)
            return None, "still open"

    assert asyncio.run(revoke_while_open()) == (4401, "token revoked or expired")


def test_list_shows_id_name_scope_creation_and_last_use_never_the_token(server: ServerProcess, scope: Scope) -> None:
    named_id, named = create(server, scope, "--name", "ci bot", "--expires-in", "30")
    plain_id, plain = create(server, scope)
    assert statuses_on_fresh_connections(server, named, 2) == [200, 200]
    listed = {t["id"]: t for t in listing(server, scope.account_id)}
    assert set(listed) == {named_id, plain_id}
    ci = listed[named_id]
    assert ci["name"] == "ci bot" and (ci["account_id"], ci["user_id"]) == (scope.account_id, scope.user_id)
    assert ci["state"] == "active" and ci["revoked_at"] is None
    created = datetime.fromisoformat(ci["created_at"])
    assert datetime.fromisoformat(ci["expires_at"]) - created > timedelta(days=29)
    assert ci["last_used_at"] is not None  # it was used; the other never was
    assert listed[plain_id]["last_used_at"] is None and listed[plain_id]["name"] is None
    table = cli(server, "tokens", "list", "--account-id", str(scope.account_id)).stdout
    json_text = cli(server, "tokens", "list", "--json").stdout
    for secret in (named, plain):
        assert secret not in table and secret not in json_text
        assert secret.removeprefix("se_") not in table + json_text
    assert "ci bot" in table and "never" in table


def test_an_expired_token_is_refused_and_its_stream_ends(server: ServerProcess, scope: Scope) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
    _, token = create(server, scope, "--expires-at", soon)
    assert statuses_on_fresh_connections(server, token, 1) == [200]
    reader = StreamReader(server.base_url, token)
    try:
        assert reader.ended.wait(20), "the stream outlived its token"
        assert statuses_on_fresh_connections(server, token, 1) == [401]
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            answer = client.get("/api/sessions", headers={"Authorization": f"Bearer {token}"})
        assert answer.json()["error_description"] == "token expired"
    finally:
        reader.close()
    [listed] = listing(server, scope.account_id)
    assert listed["state"] == "expired"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "revoke", "abc"], "is not a token id"),
        (["tokens", "revoke", "0"], "is not a token id"),
        (["tokens", "revoke", "-3"], "is not a token id"),
        (["tokens", "revoke", "987654321"], "no token 987654321"),
        (["tokens", "create", "--account-id", "1", "--user-id", "2", "--expires-in", "0"], "above 0"),
        (["tokens", "create", "--account-id", "1", "--user-id", "2", "--expires-in", "soon"], "not a number"),
        (
            ["tokens", "create", "--account-id", "1", "--user-id", "2", "--expires-at", "2001-01-01T00:00:00Z"],
            "not in the future",
        ),
        (["tokens", "create", "--account-id", "1", "--user-id", "2", "--expires-at", "tomorrow"], "RFC 3339"),
        (["tokens", "list", "--account-id", "x"], "not a whole number"),
    ],
)
def test_bad_ids_and_expiries_exit_2_with_a_message(server: ServerProcess, args: list[str], message: str) -> None:
    result = cli(server, *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
