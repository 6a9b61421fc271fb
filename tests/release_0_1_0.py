"""What release 0.1.0 stored, so that tests can check that today's code still reads it.

The rows in `tests/data/release_0_1_0/` were written by 0.1.0 itself (its `make.py` says how):
four sessions of account 1, user 2, numbered 1 to 4, with the side effects 0.1.0 knew (linked
and refused conversations, valid and invalid statuses); `states.json` is the state 0.1.0 loaded
each one to. Session 3 crossed 1,000 events, so 0.1.0 took a snapshot of it; of its events only
the first and the last two are kept, and the middle ones (`tool_called` with data `{"i": n}`)
are refilled here in the shape 0.1.0 stored (`recorded_v1_state`, checked byte for byte against
every row 0.1.0 wrote in `tests/unit/test_history.py`).

Never regenerate these files with a later release: they are the previous release's stored shape.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import DatetimeAsISO, DecimalAsStr, JSONTranscoder, StoredEvent, UUIDAsHex

from adapters.database import schema
from adapters.database.sqlite import to_sqlite_time
from adapters.database.url import DatabaseSettings
from adapters.eventstore.log import open_session_log
from domain.session import Session

DATA = Path(__file__).parent / "data" / "release_0_1_0"
ACCOUNT_ID, USER_ID = 1, 2
NUMBERS = (1, 2, 3, 4)
SNAPSHOTTED = 3
"""The session 0.1.0 took a snapshot of (at version 1002), and whose middle events are refilled."""


@dataclass(frozen=True)
class State:
    status: str
    external_conversation_id: str | None
    event_count: int
    version: int


def transcoder() -> JSONTranscoder:
    """The library's transcoder with the transcodings every `Application` registers."""
    coder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        coder.register(transcoding)
    return coder


def _rows(name: str) -> list[StoredEvent]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"].encode(),
        )
        for row in map(json.loads, lines)
    ]


def rows_0_1_0_wrote() -> list[StoredEvent]:
    """The stored events exactly as 0.1.0 wrote them (session 3's middle left out)."""
    return _rows("stored_events.jsonl")


def snapshots_0_1_0_wrote() -> list[StoredEvent]:
    return _rows("stored_snapshots.jsonl")


def states_0_1_0_loaded() -> dict[int, State]:
    states = json.loads((DATA / "states.json").read_text())
    return {int(number): State(**state) for number, state in states.items()}


def recorded_v1_state(
    timestamp: datetime,
    event_id: UUID,
    event_type: str,
    sent_at: datetime,
    data: str,
    metadata: str | None,
    sequence: int,
) -> bytes:
    """An `EventRecorded` as 0.1.0 stored it: its fields, no outcome, no class version."""
    return transcoder().encode(
        {
            "timestamp": timestamp,
            "event_id": event_id,
            "event_type": event_type,
            "sent_at": sent_at,
            "data": data,
            "metadata": metadata,
            "sequence": sequence,
        }
    )


def events_as_0_1_0_stored() -> list[StoredEvent]:
    """Every stored event of the four sessions, in the order 0.1.0 stored them, session 3's
    middle refilled: versions 3 to 1002, sequences 2 to 1001, `tool_called` `{"i": 0..999}`."""
    rows = rows_0_1_0_wrote()
    third = [row for row in rows if row.originator_id == session_uuid(SNAPSHOTTED)]
    first_of_third = rows.index(third[0])
    timestamp = transcoder().decode(third[1].state)["timestamp"]
    middle = [
        StoredEvent(
            originator_id=third[0].originator_id,
            originator_version=version,
            topic="domain.session:Session.EventRecorded",
            state=recorded_v1_state(
                timestamp=timestamp + timedelta(microseconds=version),
                event_id=UUID(int=10**9 + version),
                event_type="tool_called",
                sent_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                data=json.dumps({"i": version - 3}),
                metadata=None,
                sequence=version - 1,
            ),
        )
        for version in range(3, 1003)
    ]
    return [*rows[: first_of_third + 2], *middle, *rows[first_of_third + 2 :]]


def session_uuid(number: int) -> UUID:
    """The aggregate id of a session numbered `number` (0.1.0 derived it the same way)."""
    return Session.create_id(number)


def write_as_0_1_0_left_it(url: str) -> None:
    """A database as 0.1.0 left it: its tables (no `schema_migrations`), its stored events and
    snapshot, a directory row and an allocated number per session. The rows go in through the
    recorders as they are, without passing through today's event classes."""
    settings = DatabaseSettings.from_url(url)
    log = open_session_log(settings)
    try:
        log.create_tables()
    finally:
        log.close()
    baseline = schema.MIGRATIONS[0]
    statements = baseline.postgres if settings.kind == "postgres" else baseline.sqlite
    _execute(settings, url, [(statement, ()) for statement in statements])
    created = {
        row.originator_id: transcoder().decode(row.state)["timestamp"]
        for row in rows_0_1_0_wrote()
        if row.originator_version == 1
    }
    directory: list[tuple[str, tuple[Any, ...]]] = []
    for number in NUMBERS:
        uuid, created_at = session_uuid(number), created[session_uuid(number)]
        if settings.kind == "postgres":
            directory.append(
                (
                    "INSERT INTO session_directory (number, session_uuid, account_id, user_id, created_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (number, uuid, ACCOUNT_ID, USER_ID, created_at),
                )
            )
        else:
            directory.append(
                (
                    "INSERT INTO session_directory (number, session_uuid, account_id, user_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (number, str(uuid), ACCOUNT_ID, USER_ID, to_sqlite_time(created_at)),
                )
            )
            allocate = "INSERT INTO session_numbers (number, allocated_at) VALUES (?, ?)"
            directory.append((allocate, (number, to_sqlite_time(created_at))))
    if settings.kind == "postgres":
        directory.append(("SELECT setval('session_numbers', %s)", (max(NUMBERS),)))
    _execute(settings, url, directory)
    log = open_session_log(settings)  # the directory first: today's recorders refuse to write
    try:  # events or snapshots of a session missing from it (an erased one)
        log.recorder.insert_events(events_as_0_1_0_stored())
        assert log.snapshots is not None
        log.snapshots.recorder.insert_events(snapshots_0_1_0_wrote())
    finally:
        log.close()


def _execute(settings: DatabaseSettings, url: str, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
    if settings.kind == "postgres":
        with psycopg.connect(url, autocommit=True) as conn:
            for statement, parameters in statements:
                conn.execute(statement, parameters)
    else:
        with sqlite3.connect(settings.sqlite_path) as conn:
            for statement, parameters in statements:
                conn.execute(statement, parameters)
