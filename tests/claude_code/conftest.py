"""Runs the real `session-events hook` / `flush` commands against a spool of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.claude_code.sender_process import sender_pid, stop_sender

SESSION_EVENTS = str(Path(sys.executable).parent / "session-events")


class HookClient:
    """One user's Claude Code client: its own spool, config directory and environment."""

    def __init__(self, root: Path, url: str | None = None, token: str | None = None) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.spool = root / "state" / "session-events" / "spool.db"
        self.log = self.spool.with_name("spool.db.log")
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("SESSION_EVENTS_")}
        self.env.update(
            HOME=str(root / "home"), XDG_CONFIG_HOME=str(root / "config"), XDG_STATE_HOME=str(root / "state")
        )
        if url is not None:
            self.env["SESSION_EVENTS_URL"] = url
        if token is not None:
            self.env["SESSION_EVENTS_TOKEN"] = token

    def hook(self, payload: Any, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return subprocess.run(
            [SESSION_EVENTS, "hook"], input=raw, capture_output=True, env=kwargs.pop("env", self.env), timeout=60,
            check=False, **kwargs,
        )

    def hooks(self, payloads: list[Any]) -> None:
        for payload in payloads:
            done = self.hook(payload)
            assert done.returncode == 0 and done.stdout == b"", done

    def command(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SESSION_EVENTS, *args], input=stdin, capture_output=True, text=True, env=self.env, timeout=120,
            check=False, cwd=self.root,
        )

    def flush(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.command("flush", *args)

    def sender_pid(self) -> int | None:
        return sender_pid(self.spool)

    def stop_sender(self) -> None:
        stop_sender(self.spool)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Any]:
    """Builds hook clients; every background sender they started is stopped afterwards."""
    made: list[HookClient] = []

    def make(url: str | None = None, token: str | None = None, name: str = "client") -> HookClient:
        client = HookClient(tmp_path / name, url, token)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop_sender()


def events_of(http: httpx.Client, conversation_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The service session standing for a Claude Code session, and its events in order."""
    listed = http.get("/api/sessions", params={"conversation_id": conversation_id, "limit": 1000})
    assert listed.status_code == 200, listed.text
    matching = [s for s in listed.json()["data"] if s["external_conversation_id"] == conversation_id]
    assert len(matching) <= 1, matching
    if not matching:
        return None, []
    session = matching[0]
    events: list[dict[str, Any]] = []
    while True:
        page = http.get(f"/api/sessions/{session['id']}/events", params={"limit": 1000, "offset": len(events)})
        assert page.status_code == 200, page.text
        batch = page.json()["data"]
        events.extend(batch)
        if len(batch) < 1000:
            return session, events
