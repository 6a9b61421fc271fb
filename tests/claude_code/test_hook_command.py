"""The real `session-events hook` and `flush` commands against a real service.

Every hook here is a new process fed one payload shaped as Claude Code writes it, as Claude Code
runs it. Tests that are about the service's stores use the shared `server` fixture (SQLite and
PostgreSQL); those about the client's own resilience use a SQLite service of their own."""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.claude_code.mapping import map_payload
from application.scope import Scope
from tests.claude_code import payloads as p
from tests.claude_code.conftest import SESSION_EVENTS, HookClient, events_of
from tests.conftest import ServerProcess, free_port

MakeClient = Callable[..., HookClient]


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("hook-service")
    running = ServerProcess(f"sqlite:///{workdir / 'service.db'}", workdir)
    yield running
    running.stop()


def http_for(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def expected_types(payloads: list[dict[str, Any]]) -> list[str]:
    return ["conversation_started"] + [e.event_type.value for payload in payloads for e in map_payload(payload)]


def primary_payloads(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"]["payload"] for e in events if "payload" in e["data"]]


def test_a_claude_code_session_arrives_whole_and_in_order(server: ServerProcess, scope: Scope, make_client: MakeClient):
    token = server.token(scope)
    client = make_client(server.base_url, token)
    sid = p.new_session_id()
    payloads = p.realistic_session(sid)
    client.hooks(payloads)
    flushed = client.flush()
    assert flushed.returncode == 0, flushed.stderr

    with http_for(server, token) as http:
        session, events = events_of(http, sid)
    assert session is not None
    assert session["external_conversation_id"] == sid
    assert (session["status"], session["agent"]) == ("complete", "claude-code")
    assert [e["event_type"] for e in events] == expected_types(payloads)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert len({e["id"] for e in events}) == len(events)
    assert events[0]["data"]["conversation_id"] == sid
    assert primary_payloads(events) == payloads  # every payload kept whole: unicode, 300 KB Read and all

    tool_events = [e for e in events if e["event_type"] in ("tool_called", "tool_result")]
    for event in tool_events:
        payload = event["data"]["payload"]
        assert event["data"]["tool_name"] == payload["tool_name"]
        assert event["data"].get("tool_use_id") == payload.get("tool_use_id")
    failures = [e["data"] for e in events if e["event_type"] == "tool_result" and e["data"]["success"] is False]
    assert [(f["tool_name"], f["error"]) for f in failures] == [("Bash", "Command failed with exit code 1")]
    created = [e["data"]["file_path"] for e in events if e["event_type"] == "file_created"]
    assert created == [f"{p.CWD}/src/nouveau.py"]
    hooks_kept = [e["data"]["hook_event_name"] for e in events if e["event_type"] == "hook_triggered"]
    assert hooks_kept == [
        "SessionStart",
        "PermissionRequest",
        "Notification",
        "SubagentStart",
        "SubagentStop",
        "PostToolBatch",
        "PreCompact",
    ]

    # The ids of tool events are the ones derived from the payloads (stable across retries).
    derived = {e.id for payload in payloads if "tool_use_id" in payload for e in map_payload(payload)}
    assert derived <= {e["id"] for e in events}

    # The session's stats count what the events say (session_stats pairs calls and results by
    # tool_use_id), worked out here from the events themselves.
    with http_for(server, token) as http:
        stats = http.get(f"/api/sessions/{session['id']}/stats").json()["data"]
    assert stats["event_count"] == len(events)
    assert stats["by_type"] == dict(Counter(e["event_type"] for e in events))
    assert stats["errors"] == sum(e["event_type"] == "error_occurred" for e in events)
    open_calls: dict[str, str] = {}
    expected: dict[str, dict[str, int]] = {}
    for event in events:
        data = event["data"]
        if event["event_type"] == "tool_called":
            expected.setdefault(data["tool_name"], {"calls": 0, "completed": 0, "failures": 0})["calls"] += 1
            if data.get("tool_use_id"):
                open_calls.setdefault(data["tool_use_id"], data["tool_name"])
        elif event["event_type"] == "tool_result" and data.get("tool_use_id") in open_calls:
            tool = expected[open_calls.pop(data["tool_use_id"])]
            tool["completed"] += 1
            tool["failures"] += data.get("success") is False
    assert {
        name: {k: v for k, v in t.items() if k != "total_duration_ms"} for name, t in stats["tools"].items()
    } == expected
    assert stats["tools"]["Bash"]["failures"] == 1


def test_identical_prompts_are_two_events_and_a_tool_call_hooked_twice_is_one(
    server: ServerProcess, scope: Scope, make_client: MakeClient
):
    token = server.token(scope)
    client = make_client(server.base_url, token)
    sid = p.new_session_id()
    same_prompt = p.user_prompt(sid, "run the tests again")
    bash = p.post_tool(
        sid, "Bash", {"command": "pytest"}, {"stdout": "ok", "stderr": "", "interrupted": False}, p.tool_use_id()
    )
    client.hooks([same_prompt, same_prompt, bash])
    assert client.flush().returncode == 0
    client.hooks([bash])  # hooked again after it was sent: the service already has it
    assert client.flush().returncode == 0

    with http_for(server, token) as http:
        _, events = events_of(http, sid)
    assert [e["event_type"] for e in events] == [
        "conversation_started",
        "conversation_message_sent",
        "conversation_message_sent",
        "tool_result",
        "command_completed",
    ]
    assert events[1]["id"] != events[2]["id"]


def test_events_spooled_while_the_service_is_down_arrive_once_and_in_order_when_it_is_back(
    tmp_path: Path, scope: Scope, make_client: MakeClient
):
    port = free_port()
    database = f"sqlite:///{tmp_path / 'service.db'}"
    first = ServerProcess(database, tmp_path, port=port)
    token = first.token(scope)
    first.stop()

    client = make_client(first.base_url, token)
    one, two = p.new_session_id(), p.new_session_id()
    sessions = {one: p.realistic_session(one), two: p.realistic_session(two)}
    for pair in zip(sessions[one], sessions[two], strict=True):  # two Claude Code windows at once
        client.hooks(list(pair))
    assert client.sender_pid() is not None  # started by the hooks, backing off

    down = client.flush("--timeout", "0")
    assert down.returncode == 1
    assert "events stay spooled" in down.stderr and "unreachable" in down.stderr

    again = ServerProcess(database, tmp_path, port=port)
    try:
        with http_for(again, token) as http:
            deadline = time.monotonic() + 120  # the background sender's backoff, not a timing assertion
            while True:
                arrived = {sid: events_of(http, sid)[1] for sid in sessions}
                if all(len(arrived[sid]) == len(expected_types(sessions[sid])) for sid in sessions):
                    break
                assert time.monotonic() < deadline, {sid: len(events) for sid, events in arrived.items()}
                time.sleep(0.5)
            time.sleep(1.5)  # a second round of the sender, had it anything more to send
            arrived = {sid: events_of(http, sid)[1] for sid in sessions}
    finally:
        again.stop()
    for sid, payloads in sessions.items():
        events = arrived[sid]
        assert [e["event_type"] for e in events] == expected_types(payloads)
        assert primary_payloads(events) == payloads
        assert len({e["id"] for e in events}) == len(events)


def test_a_burst_of_200_parallel_hooks_loses_and_duplicates_nothing(
    sqlite_server: ServerProcess, scope: Scope, make_client: MakeClient
):
    token = sqlite_server.token(scope)
    client = make_client(sqlite_server.base_url, token)
    sids = [p.new_session_id(), p.new_session_id()]
    repeated = p.pre_tool(sids[0], "Read", {"file_path": "/x"}, "toolu_repeated")
    inputs = [repeated] * 4  # the same tool call hooked four times at once: one event
    inputs += [p.user_prompt(sids[n % 2], f"prompt {n}") for n in range(150)]
    inputs += [p.pre_tool(sids[n % 2], "Bash", {"command": f"echo {n}"}, None) for n in range(46)]
    assert len(inputs) == 200

    stdins = []
    for n, payload in enumerate(inputs):
        path = client.root / f"payload-{n}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        stdins.append(path.open("rb"))
    processes = [
        subprocess.Popen(
            [SESSION_EVENTS, "hook"], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client.env
        )
        for stdin in stdins
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    for stdin in stdins:
        stdin.close()
    assert [process.returncode for process in processes] == [0] * 200
    assert [out for out, _err in outputs] == [b""] * 200
    assert [err for _out, err in outputs] == [b""] * 200

    assert client.flush().returncode == 0
    with http_for(sqlite_server, token) as http:
        received = {sid: events_of(http, sid)[1] for sid in sids}
    everything = [e for events in received.values() for e in events]
    assert len({e["id"] for e in everything}) == len(everything)
    prompts = sorted(
        e["data"]["payload"]["prompt"] for e in everything if e["event_type"] == "conversation_message_sent"
    )
    assert prompts == sorted(f"prompt {n}" for n in range(150))
    commands = sorted(e["data"]["command"] for e in everything if e["event_type"] == "command_started")
    assert commands == sorted(f"echo {n}" for n in range(46))
    assert sum(e["data"].get("tool_use_id") == "toolu_repeated" for e in everything) == 1
    for events in received.values():
        assert [e["event_type"] for e in events].count("conversation_started") == 1
        assert events[0]["event_type"] == "conversation_started"
    assert client.log.read_text().count("background sender started") == 1


BAD_INPUTS = {
    "empty": b"",
    "whitespace": b" \n",
    "not json": b"this is not JSON",
    "a json array": b'[{"session_id": "s", "hook_event_name": "Stop"}]',
    "a json string": b'"SessionStart"',
    "no session_id": json.dumps({"hook_event_name": "Stop", "cwd": "/x"}).encode(),
    "cut short": b'{"session_id": "s", "hook_event_name": "PreTo',
    "invalid utf-8": b'{"session_id": "\xff\xfe"}',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "megabytes of garbage": os.urandom(3 * 1024 * 1024),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_never_fails_the_hook_prints_nothing_and_is_logged(name: str, make_client: MakeClient):
    client = make_client()
    done = client.hook(BAD_INPUTS[name])
    assert (done.returncode, done.stdout) == (0, b"")
    assert b"hook input ignored" in done.stderr
    assert "hook input ignored" in client.log.read_text()
    assert not client.spool.exists()


def test_a_wrong_token_never_fails_the_hook_and_its_events_wait_aside(
    sqlite_server: ServerProcess, scope: Scope, make_client: MakeClient
):
    good = sqlite_server.token(scope)
    client = make_client(sqlite_server.base_url, "se_not_a_token")
    sid = p.new_session_id()
    payloads = [p.session_start(sid), p.user_prompt(sid, "hello"), p.stop(sid)]
    for payload in payloads:
        done = client.hook(payload)
        assert (done.returncode, done.stdout) == (0, b"")
    refused = client.flush()
    assert refused.returncode == 1
    assert "rejected" in refused.stderr and "401" in refused.stderr
    status = json.loads(client.command("hooks", "status", "--json").stdout)
    assert (status["pending"], status["rejected"]) == (0, 4)

    client.env["SESSION_EVENTS_TOKEN"] = good
    resent = client.flush("--requeue-rejected")
    assert resent.returncode == 0, resent.stderr
    with http_for(sqlite_server, good) as http:
        _, events = events_of(http, sid)
    assert [e["event_type"] for e in events] == expected_types(payloads)


def test_flush_with_nothing_spooled_succeeds_and_without_configuration_says_why(
    sqlite_server: ServerProcess, scope: Scope, make_client: MakeClient
):
    configured = make_client(sqlite_server.base_url, sqlite_server.token(scope), name="configured")
    assert configured.flush().returncode == 0
    unconfigured = make_client(name="unconfigured")
    unconfigured.hooks([p.user_prompt(p.new_session_id(), "kept for later")])
    assert unconfigured.sender_pid() is None  # nothing to send to: no sender started
    done = unconfigured.flush()
    assert done.returncode == 1 and "SESSION_EVENTS_URL is not set" in done.stderr
    assert "2 events stay spooled" in done.stderr


def _without_root_privileges() -> Callable[[], None] | None:
    """For the child of a root test run: drop the capabilities that let root write anywhere."""
    if os.geteuid() != 0:
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def drop() -> None:
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            libc.prctl(24, capability, 0, 0, 0)  # PR_CAPBSET_DROP: gone from the command after exec

    return drop


def test_a_read_only_spool_directory_never_fails_the_hook(tmp_path: Path, make_client: MakeClient):
    client = make_client()
    client.spool.parent.mkdir(parents=True)
    client.spool.parent.chmod(0o555)
    try:
        done = client.hook(
            p.user_prompt(p.new_session_id(), "lost, but never blocking"), preexec_fn=_without_root_privileges()
        )
    finally:
        client.spool.parent.chmod(0o755)
    assert (done.returncode, done.stdout) == (0, b"")
    assert b"hook failed" in done.stderr
    assert list(client.spool.parent.iterdir()) == []


def test_a_full_disk_never_fails_the_hook(tmp_path: Path, make_client: MakeClient):
    client = make_client()
    sid = p.new_session_id()
    client.hooks([p.user_prompt(sid, "stored before the disk filled up")])

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes beyond the limit fail with EFBIG

    big = p.post_tool(
        sid, "Read", {"file_path": "/big"}, {"type": "text", "file": {"content": p.LARGE_FILE}}, p.tool_use_id()
    )
    done = client.hook(big, preexec_fn=full_disk)
    assert (done.returncode, done.stdout) == (0, b"")
    assert b"hook failed" in done.stderr
    status = json.loads(client.command("hooks", "status", "--json").stdout)
    assert status["pending"] == 2  # what was there is intact
