"""Reads of the read models, each consistent with the log on demand (read your writes).

A read waits until its projection has passed the log's head as it was when the call began, and
checks that position in the same snapshot as it reads the rows; on PostgreSQL it first locks the
tables it reads, so that a rebuild swapping a new generation in commits wholly before the
snapshot or after the read. A projection that has failed before reaching that head answers at
once: `ReadModelFailed` (a 503 naming the failure), not a wait."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from adapters.database.base import Database, store_errors
from adapters.readmodel.projection import FAILED, Projector
from adapters.readmodel.session_events import NAME as SESSION_EVENTS
from adapters.readmodel.session_stats import NAME as SESSION_STATS
from application.errors import ReadModelFailed, StoreUnavailable
from application.queries import EventQuery, Order, RecordedEvent, SessionStats, ToolStats

CATCH_UP_TIMEOUT = 5.0
T = TypeVar("T")


class ReadYourWrites:
    def __init__(self, projectors: dict[str, Projector], database: Database) -> None:
        self._projectors = projectors
        self._db = database

    def read(self, projection: str, tables: Sequence[str], query: Callable[[Any], T]) -> T:
        projector = self._projectors[projection]
        with store_errors():
            head = projector.head()
            deadline = time.monotonic() + CATCH_UP_TIMEOUT
            while True:
                found, result = self._read_if_projected_to(projection, head, tables, query)
                if found:
                    return result  # type: ignore[return-value]  # set whenever found
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"the {projection} read model is behind the event log; retry shortly")
                projector.progress.wait(0.01)

    def _read_if_projected_to(
        self, projection: str, head: int, tables: Sequence[str], query: Callable[[Any], T]
    ) -> tuple[bool, T | None]:
        db = self._db
        with db.transaction(commit=False) as cursor:
            db.snapshot_reads(cursor, tables)
            cursor.execute(
                db.statement("SELECT position, state, error, failed_position FROM projection_tracking WHERE name = %s"),
                (projection,),
            )
            tracked = cursor.fetchone()
            if tracked is None:
                return False, None
            if int(tracked["position"]) >= head:
                return True, query(cursor)
            if tracked["state"] == FAILED:
                raise ReadModelFailed(projection, int(tracked["failed_position"] or 0), str(tracked["error"]))
            return False, None


class ReadModelEventViews:
    def __init__(self, reads: ReadYourWrites, database: Database) -> None:
        self._reads = reads
        self._db = database

    def events(self, session_id: int, query: EventQuery) -> Sequence[RecordedEvent]:
        """Every event committed before the call is included (read your writes, for any client)."""
        db = self._db
        direction = "DESC" if query.order is Order.DESC else "ASC"
        data, metadata = db.json_text("data"), db.json_text("metadata")
        columns = f"id, session_id, sequence, event_type, sent_at, received_at, {data}, {metadata}"
        statement = f"SELECT {columns} FROM session_events WHERE session_id = %s"  # noqa: S608 (our columns)
        params: list[object] = [session_id]
        if query.event_type is not None:
            statement += " AND event_type = %s"
            params.append(query.event_type.value)
        statement += f" ORDER BY sent_at {direction}, sequence {direction} LIMIT %s OFFSET %s"  # ASC or DESC only
        params += [query.limit, query.offset]

        def rows(cursor: Any) -> list[Any]:
            cursor.execute(db.statement(statement), params)
            return list(cursor.fetchall())

        return [self._event(row) for row in self._reads.read(SESSION_EVENTS, ["session_events"], rows)]

    def _event(self, row: Any) -> RecordedEvent:
        db = self._db
        return RecordedEvent(
            event_id=db.read_uuid(row["id"]),
            session_id=int(row["session_id"]),
            sequence=int(row["sequence"]),
            event_type=row["event_type"],
            sent_at=db.read_time(row["sent_at"]),
            received_at=db.read_time(row["received_at"]),
            data_json=row["data"],
            metadata_json=row["metadata"],
        )


class ReadModelStatsViews:
    def __init__(self, reads: ReadYourWrites, database: Database) -> None:
        self._reads = reads
        self._db = database

    def stats(self, session_id: int) -> SessionStats:
        """Counts every event committed before the call; a session without events has zeros."""
        db = self._db

        def row(cursor: Any) -> Any:
            cursor.execute(
                db.statement(
                    "SELECT event_count, first_sent_at, last_sent_at, by_type, errors, tools"
                    " FROM session_stats WHERE session_id = %s"
                ),
                (session_id,),
            )
            return cursor.fetchone()

        found = self._reads.read(SESSION_STATS, ["session_stats"], row)
        if found is None:
            return SessionStats(session_id=session_id)
        return SessionStats(
            session_id=session_id,
            event_count=int(found["event_count"]),
            first_sent_at=db.read_time(found["first_sent_at"]) if found["first_sent_at"] is not None else None,
            last_sent_at=db.read_time(found["last_sent_at"]) if found["last_sent_at"] is not None else None,
            by_type=json.loads(found["by_type"]),
            errors=int(found["errors"]),
            tools={name: ToolStats(**tool) for name, tool in json.loads(found["tools"]).items()},
        )
