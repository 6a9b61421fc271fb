"""The `session_stats` read model: per session, counts by event type, first and last `sent_at`,
errors, and per tool (`data.tool_name` of `tool_called`) its calls, completions, failures and
total duration. A `tool_result` completes the session's earlier `tool_called` with the same
`data.tool_use_id` (once); it is a failure when its `data.success` is `false`. Calls still
waiting for their result are kept in `session_stats_open_calls`.

Only tool events have their `data` decoded, and of it only the three keys the model reads:
every other event just counts."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from adapters.database.base import Database
from adapters.readmodel.projection import LogEvent
from application.queries import SessionStats, ToolStats

NAME = "session_stats"
T = TypeVar("T")
TOOL_CALLED, TOOL_RESULT, ERROR_OCCURRED = "tool_called", "tool_result", "error_occurred"


@dataclass
class _OpenCall:
    tool_name: str
    sent_at: datetime


@dataclass
class _Session:
    stats: SessionStats
    open_calls: dict[str, _OpenCall] = field(default_factory=dict)
    stored_calls: dict[str, _OpenCall] = field(default_factory=dict)
    """The open calls as the table holds them, to write back only what changed."""


class ToolFields(msgspec.Struct, gc=False):
    """The keys of a tool event's `data` the model reads."""

    tool_name: Any = None
    tool_use_id: Any = None
    success: Any = None


NO_TOOL_FIELDS = ToolFields()
_decode_tool_fields = msgspec.json.Decoder(ToolFields).decode


def tool_fields(data_json: str) -> ToolFields:
    """The keys as `json.loads` reads them (the last of duplicated keys; none from text that is
    not a JSON object). msgspec builds only these three values and skips the rest of the text;
    the few texts it refuses but `json` reads (`NaN`, a lone surrogate) are read by `json`."""
    try:
        return _decode_tool_fields(data_json)
    except msgspec.MsgspecError:
        pass
    try:
        data = json.loads(data_json)
    except ValueError:
        return NO_TOOL_FIELDS
    if not isinstance(data, dict):
        return NO_TOOL_FIELDS
    return ToolFields(data.get("tool_name"), data.get("tool_use_id"), data.get("success"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class SessionStatsModel:
    name = NAME
    tables = ("session_stats", "session_stats_open_calls")

    def write(self, db: Database, cursor: Any, tables: Mapping[str, str], batch: Sequence[LogEvent]) -> None:
        recorded = [(e.session_number, r) for e in batch if (r := e.recorded) is not None]
        if not recorded:
            return
        sessions = self._load(db, cursor, tables, sorted({number for number, _ in recorded}))
        for number, event in recorded:
            self._count(sessions[number], event.event_type, event.sent_at, event.data)
        self._store(db, cursor, tables, sessions)

    def erase(self, db: Database, cursor: Any, tables: Mapping[str, str], session_numbers: Sequence[int]) -> None:
        for table in self.tables:
            delete = db.statement(f"DELETE FROM {tables[table]} WHERE session_id = %s")  # noqa: S608 (our tables)
            cursor.executemany(delete, [(number,) for number in session_numbers])

    @staticmethod
    def _count(session: _Session, event_type: str, sent_at: datetime, data_json: str) -> None:
        stats = session.stats
        stats.event_count += 1
        stats.by_type[event_type] = stats.by_type.get(event_type, 0) + 1
        stats.first_sent_at = sent_at if stats.first_sent_at is None else min(stats.first_sent_at, sent_at)
        stats.last_sent_at = sent_at if stats.last_sent_at is None else max(stats.last_sent_at, sent_at)
        if event_type == ERROR_OCCURRED:
            stats.errors += 1
        elif event_type == TOOL_CALLED:
            fields = tool_fields(data_json)
            tool_name = _text(fields.tool_name)
            if tool_name is None:
                return
            stats.tools.setdefault(tool_name, ToolStats()).calls += 1
            tool_use_id = _text(fields.tool_use_id)
            if tool_use_id is not None and tool_use_id not in session.open_calls:
                session.open_calls[tool_use_id] = _OpenCall(tool_name, sent_at)
        elif event_type == TOOL_RESULT:
            fields = tool_fields(data_json)
            tool_use_id = _text(fields.tool_use_id)
            call = session.open_calls.pop(tool_use_id, None) if tool_use_id is not None else None
            if call is None:
                return
            tool = stats.tools.setdefault(call.tool_name, ToolStats())
            tool.completed += 1
            tool.total_duration_ms += (sent_at - call.sent_at).total_seconds() * 1000
            if fields.success is False:
                tool.failures += 1

    @staticmethod
    def _load(db: Database, cursor: Any, tables: Mapping[str, str], numbers: list[int]) -> dict[int, _Session]:
        sessions = {number: _Session(SessionStats(session_id=number)) for number in numbers}
        stats_table, calls_table = tables["session_stats"], tables["session_stats_open_calls"]
        columns = "session_id, event_count, first_sent_at, last_sent_at, by_type, errors, tools"
        for chunk in _chunks(numbers):
            marks = _marks(1, len(chunk))  # one row: the list of numbers
            query = f"SELECT {columns} FROM {stats_table} WHERE session_id IN {marks}"  # noqa: S608 (our table, placeholders)
            cursor.execute(db.statement(query), chunk)
            for row in cursor.fetchall():
                sessions[int(row["session_id"])].stats = SessionStats(
                    session_id=int(row["session_id"]),
                    event_count=int(row["event_count"]),
                    first_sent_at=db.read_time(row["first_sent_at"]) if row["first_sent_at"] is not None else None,
                    last_sent_at=db.read_time(row["last_sent_at"]) if row["last_sent_at"] is not None else None,
                    by_type=json.loads(row["by_type"]),
                    errors=int(row["errors"]),
                    tools={name: ToolStats(**tool) for name, tool in json.loads(row["tools"]).items()},
                )
            query = f"SELECT session_id, tool_use_id, tool_name, sent_at FROM {calls_table} WHERE session_id IN {marks}"  # noqa: S608 (our table, placeholders)
            cursor.execute(db.statement(query), chunk)
            for row in cursor.fetchall():
                session = sessions[int(row["session_id"])]
                call = _OpenCall(row["tool_name"], db.read_time(row["sent_at"]))
                session.open_calls[row["tool_use_id"]] = session.stored_calls[row["tool_use_id"]] = call
        return sessions

    @staticmethod
    def _store(db: Database, cursor: Any, tables: Mapping[str, str], sessions: Mapping[int, _Session]) -> None:
        """One statement per chunk of rows, never one per row: the sessions' upsert, the calls the
        batch closed (deleted before the ones it opened are inserted: an id may close and open again)."""
        stats_table, calls_table = tables["session_stats"], tables["session_stats_open_calls"]
        rows = [
            (
                number,
                s.stats.event_count,
                db.time(s.stats.first_sent_at) if s.stats.first_sent_at else None,
                db.time(s.stats.last_sent_at) if s.stats.last_sent_at else None,
                json.dumps(s.stats.by_type, sort_keys=True),
                s.stats.errors,
                json.dumps({name: tool.as_dict() for name, tool in s.stats.tools.items()}, sort_keys=True),
            )
            for number, s in sessions.items()
        ]
        for chunk in _chunks(rows):
            cursor.execute(
                db.statement(
                    f"INSERT INTO {stats_table} (session_id, event_count, first_sent_at, last_sent_at, by_type, errors,"  # noqa: S608 (our table, placeholders)
                    f" tools) VALUES {_marks(len(chunk), 7)} ON CONFLICT (session_id) DO UPDATE SET"
                    " event_count = excluded.event_count, first_sent_at = excluded.first_sent_at,"
                    " last_sent_at = excluded.last_sent_at, by_type = excluded.by_type, errors = excluded.errors,"
                    " tools = excluded.tools"
                ),
                [value for row in chunk for value in row],
            )
        # A call opened and closed within the batch never reaches the table.
        closed = [
            (number, tid)
            for number, s in sessions.items()
            for tid, call in s.stored_calls.items()
            if s.open_calls.get(tid) is not call
        ]
        opened = [
            (number, tid, call.tool_name, db.time(call.sent_at))
            for number, s in sessions.items()
            for tid, call in s.open_calls.items()
            if s.stored_calls.get(tid) is not call
        ]
        for keys in _chunks(closed):
            cursor.execute(
                db.statement(
                    f"DELETE FROM {calls_table} WHERE (session_id, tool_use_id) IN (VALUES {_marks(len(keys), 2)})"  # noqa: S608 (our table, placeholders)
                ),
                [value for key in keys for value in key],
            )
        db.insert_rows(cursor, calls_table, ("session_id", "tool_use_id", "tool_name", "sent_at"), opened)


_CHUNK = 500
"""Rows per statement: SQLite caps the number of parameters of one statement."""


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _marks(rows: int, columns: int) -> str:
    """`(%s, ...), (%s, ...)`: placeholders for `rows` rows of `columns` values."""
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)
