"""`session-events export`, the real command in a subprocess, on SQLite and PostgreSQL: what it
writes is what the API answers for the same events, read from the log in log order, filtered by
session and time, in constant memory."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from application.scope import Scope
from application.validation import RawFields
from entrypoints.bootstrap import bootstrap
from tests.conftest import STORES, free_port, settings_for, store_url
from tests.factories import SENT_AT

COLUMNS = ["id", "session_id", "event_type", "sent_at", "received_at", "data", "metadata", "sequence"]

EXACT_DATA = [
    b'{"ratio": 1.0, "count": 1, "big": 12345678901234567890123, "exp": 1E+2, "neg": -0.0, "half": 2.50}',
    b'{"name": "caf\\u00e9 caf\xc3\xa9", "emoji": "\xf0\x9f\x98\x80 \\ud83d\\ude00", "quote": "a \\"b\\" \\\\ c"}',
    b'{"nested": {"list": [1, 1.0, [true, false, null], {"deep": {"er": []}}], "empty": {}}}',
    b'{ "spaced" :  [ 1 ,2 ] ,"tab":\t"x" }',
    b"{}",
]
MULTILINE_DATA = b'{\n  "tool_name": "Read",\r\n  "lines": "one\\ntwo"\n}'


class Raw(msgspec.Struct):
    """A jsonl line with `data` and `metadata` kept as the bytes written."""

    data: msgspec.Raw
    metadata: msgspec.Raw


def run_export(database_url: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "export", *args],
        cwd=cwd,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        timeout=300,
        check=False,
    )


def exported_lines(result: subprocess.CompletedProcess[bytes]) -> list[bytes]:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.splitlines()


def post_exact(client: httpx.Client, session_id: int, data: bytes, **fields: Any) -> None:
    """Posts one event whose `data` is these exact bytes."""
    wrapper = json.dumps({"event_type": "tool_called", "sent_at": SENT_AT, **fields})
    body = wrapper[:-1].encode() + b', "data": ' + data + b"}"
    response = client.post(
        f"/api/sessions/{session_id}/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text


def api_events(client: httpx.Client, session_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/sessions/{session_id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return sorted(response.json()["data"], key=lambda e: e["sequence"])


def new_session(client: httpx.Client) -> int:
    response = client.post("/api/sessions", json={})
    assert response.status_code == 201, response.text
    return int(response.json()["data"]["id"])


@pytest.fixture
def session_with_exact_data(client: httpx.Client) -> int:
    session_id = new_session(client)
    for data in EXACT_DATA:
        post_exact(client, session_id, data, metadata={"n": 1.0})
    post_exact(client, session_id, MULTILINE_DATA)
    batch = [{"event_type": "toolResult", "timestamp": "2026-01-01T01:00:00.123456789+02:00", "data": {"ok": True}}]
    assert client.post(f"/api/sessions/{session_id}/events/batch", json={"events": batch}).status_code == 200
    return session_id


def test_jsonl_lines_are_the_api_events_with_data_as_sent(
    client: httpx.Client, session_with_exact_data: int, database_url: str, tmp_path: Path
) -> None:
    session_id = session_with_exact_data
    lines = exported_lines(run_export(database_url, tmp_path, "--session", str(session_id)))
    expected = api_events(client, session_id)
    assert [json.loads(line) for line in lines] == expected
    assert [list(json.loads(line)) for line in lines] == [COLUMNS] * len(expected)  # the fields, in order
    raw = [msgspec.json.decode(line, type=Raw) for line in lines]
    assert [bytes(r.data) for r in raw[: len(EXACT_DATA)]] == EXACT_DATA  # to the byte
    assert {bytes(r.metadata) for r in raw[: len(EXACT_DATA)]} == {b'{"n": 1.0}'}
    # A line break between tokens becomes a space, so that the event keeps to one line.
    assert bytes(raw[len(EXACT_DATA)].data) == MULTILINE_DATA.replace(b"\r", b" ").replace(b"\n", b" ")
    assert bytes(raw[-1].data) == b'{"ok":true}' and bytes(raw[-1].metadata) == b"null"


def test_csv_parses_back_to_the_same_values(
    client: httpx.Client, session_with_exact_data: int, database_url: str, tmp_path: Path
) -> None:
    session_id = session_with_exact_data
    result = run_export(database_url, tmp_path, "--session", str(session_id), "--format", "csv")
    assert result.returncode == 0, result.stderr.decode()
    rows = list(csv.reader(io.StringIO(result.stdout.decode("utf-8"), newline="")))
    assert rows[0] == COLUMNS
    expected = api_events(client, session_id)
    parsed = [
        {
            **row,
            "session_id": int(row["session_id"]),
            "sequence": int(row["sequence"]),
            "data": json.loads(row["data"]),
            "metadata": json.loads(row["metadata"]),
        }
        for row in (dict(zip(COLUMNS, cells, strict=True)) for cells in rows[1:])
    ]
    assert parsed == expected
    data_texts = [cells[COLUMNS.index("data")].encode() for cells in rows[1:]]
    assert data_texts[: len(EXACT_DATA) + 1] == [*EXACT_DATA, MULTILINE_DATA]  # CSV keeps even line breaks


def test_the_whole_log_comes_in_log_order_and_since_keeps_later_events(
    client: httpx.Client, database_url: str, tmp_path: Path
) -> None:
    first, second = new_session(client), new_session(client)
    posted = []
    for n in range(6):  # the two sessions' events interleave in the log
        session_id = (first, second)[n % 2]
        post_exact(client, session_id, f'{{"n": {n}}}'.encode())
        posted.append((session_id, n))

    def mine(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, exported_lines(result)) if e["session_id"] in (first, second)]

    everything = mine(run_export(database_url, tmp_path))
    assert [(e["session_id"], e["data"]["n"]) for e in everything] == posted
    assert [e["id"] for e in everything if e["session_id"] == first] == [e["id"] for e in api_events(client, first)]

    boundary = everything[3]["received_at"]  # exactly an event's time: that event is kept
    since = mine(run_export(database_url, tmp_path, "--since", boundary))
    assert [e["id"] for e in since] == [e["id"] for e in everything[3:]]
    same_instant = boundary.replace("Z", "+00:00")
    assert mine(run_export(database_url, tmp_path, "--since", same_instant)) == since
    only_second = exported_lines(run_export(database_url, tmp_path, "--session", str(second), "--since", boundary))
    assert [json.loads(line)["id"] for line in only_second] == [e["id"] for e in since if e["session_id"] == second]
    future = exported_lines(run_export(database_url, tmp_path, "--since", "2999-01-01T00:00:00Z"))
    assert future == []


def test_a_file_is_written_whole_and_nothing_goes_to_stderr_off_a_terminal(
    client: httpx.Client, session_with_exact_data: int, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "events.jsonl"
    to_stdout = run_export(database_url, tmp_path, "--session", str(session_with_exact_data))
    to_file = run_export(database_url, tmp_path, "--session", str(session_with_exact_data), "--output", str(target))
    assert (to_file.returncode, to_file.stdout, to_file.stderr) == (0, b"", b"")
    assert to_stdout.stderr == b""
    assert target.read_bytes() == to_stdout.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left


def test_progress_shows_on_a_terminal_only_on_stderr(
    client: httpx.Client, session_with_exact_data: int, database_url: str, tmp_path: Path
) -> None:
    primary, replica = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "entrypoints.cli", "export", "--session", str(session_with_exact_data)],
            cwd=tmp_path,
            env={**os.environ, "DATABASE_URL": database_url, "COLUMNS": "120"},
            stdout=subprocess.PIPE,
            stderr=replica,
            timeout=120,
            check=False,
        )
        os.close(replica)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert result.returncode == 0
    assert b"events" in shown and b"exported 7 events" in shown
    assert len(result.stdout.splitlines()) == 7 and b"events/s" not in result.stdout


def test_an_unknown_session_or_a_bad_since_is_refused_with_status_2(database_url: str, tmp_path: Path) -> None:
    for args, message in (
        (["--session", "987654321"], b"no session 987654321"),
        (["--session", "0"], b"no session 0"),
        (["--since", "yesterday"], b"'yesterday' is not an RFC 3339 date-time"),
        (["--since", "2026-13-45T00:00:00Z"], b"is not an RFC 3339 date-time"),
        (["--format", "xml"], b"invalid choice"),
    ):
        result = run_export(database_url, tmp_path, *args)
        assert (result.returncode, result.stdout) == (2, b""), args
        assert message in result.stderr and b"Traceback" not in result.stderr, result.stderr


def test_an_unreachable_store_is_status_1_with_the_reason(tmp_path: Path) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    result = run_export(closed, tmp_path)
    assert (result.returncode, result.stdout) == (1, b"")
    assert b"the store is unreachable" in result.stderr and b"Traceback" not in result.stderr
    missing_folder = f"sqlite:///{tmp_path / 'absent' / 'x.db'}"
    result = run_export(missing_folder, tmp_path)
    assert result.returncode == 1 and b"does not exist" in result.stderr


# --- constant memory ------------------------------------------------------------------------

PAYLOAD = "x" * 2500
"""Events of a few KB, so that holding 20,000 of them would show plainly in the process's size."""


@pytest.fixture(params=STORES)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request.param, tmp_path) as url:
        yield url


def add_events(database_url: str, count: int) -> None:
    service = bootstrap(settings_for(database_url), run_projection=False)
    try:
        scope = Scope(account_id=1, user_id=1)
        session_id = service.sessions.create_session(scope).number
        for start in range(0, count, 1000):
            batch: list[RawFields] = [
                {
                    "event_type": b'"tool_called"',
                    "sent_at": f'"{SENT_AT}"'.encode(),
                    "data": json.dumps({"n": start + i, "text": PAYLOAD, "f": 1.0}).encode(),
                }
                for i in range(min(1000, count - start))
            ]
            service.sessions.handle_events(scope, session_id, batch)
    finally:
        service.close()


MEASURED = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""
"""Runs the command from a small process of its own and reports the command's peak RSS. Measured
from the test process itself, it would read at least the test process's own size: Linux carries a
parent's peak over to a child it forks, through exec."""


def peak_rss_kib(database_url: str, cwd: Path, *args: str) -> tuple[int, list[tuple[int, int]]]:
    """(peak resident size of the export command in KiB, (session, sequence) of each event it wrote)."""
    output = cwd / "out.export"
    with output.open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-c", MEASURED, sys.executable, "-m", "entrypoints.cli", "export", *args],
            cwd=cwd,
            env={**os.environ, "DATABASE_URL": database_url},
            stdout=out,
            stderr=subprocess.PIPE,
            timeout=300,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    with output.open(newline="") as written:
        if "csv" in args:
            rows = csv.DictReader(written)
            events = [(int(row["session_id"]), int(row["sequence"])) for row in rows]
        else:
            events = [(e["session_id"], e["sequence"]) for e in map(json.loads, written)]
    return int(result.stderr.split()[-1]), events


def test_the_export_runs_in_constant_memory(empty_store: str, tmp_path: Path) -> None:
    add_events(empty_store, 2_000)
    small, small_events = peak_rss_kib(empty_store, tmp_path)
    add_events(empty_store, 18_000)
    large, large_events = peak_rss_kib(empty_store, tmp_path)
    large_csv, csv_events = peak_rss_kib(empty_store, tmp_path, "--format", "csv")
    session, session_events = peak_rss_kib(empty_store, tmp_path, "--session", "2")
    # Every event once, in log order, across page boundaries.
    first = [(1, n) for n in range(1, 2_001)]
    second = [(2, n) for n in range(1, 18_001)]
    assert (small_events, large_events, csv_events, session_events) == (first, first + second, first + second, second)
    print(f"peak RSS: 2,000 events {small} KiB; 20,000: {large} KiB jsonl, {large_csv} KiB csv, {session} KiB session")
    assert large < 1.5 * small and large_csv < 1.5 * small and session < 1.5 * small
