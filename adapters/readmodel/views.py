"""`EventViews`: reads of the `session_events` read model, consistent with the log on demand."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from adapters.database.base import Database, store_errors
from adapters.readmodel.projection import PROJECTION_NAME, SessionEventsProjection
from application.errors import StoreUnavailable
from application.queries import EventQuery, Order, RecordedEvent

CATCH_UP_TIMEOUT = 5.0


class ReadModelEventViews:
    def __init__(self, projection: SessionEventsProjection, database: Database) -> None:
        self._projection = projection
        self._db = database

    def events(self, session_id: int, query: EventQuery) -> Sequence[RecordedEvent]:
        """Every event committed before the call is included (read your writes, for any client):
        the read waits for the projection to pass the log's head as it was when the call began,
        and checks that position in the same snapshot as it reads the rows, so that a rebuild
        emptying the table in between cannot show a partial answer."""
        with store_errors():
            head = self._projection.head()
            deadline = time.monotonic() + CATCH_UP_TIMEOUT
            while True:
                rows = self._rows_if_projected_to(head, session_id, query)
                if rows is not None:
                    return [self._event(row) for row in rows]
                if time.monotonic() > deadline:
                    raise StoreUnavailable("the read model is behind the event log; retry shortly")
                self._projection.progress.wait(0.01)

    def _rows_if_projected_to(self, head: int, session_id: int, query: EventQuery) -> list[Any] | None:
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
        with db.transaction(commit=False) as cursor:
            db.snapshot_reads(cursor)
            cursor.execute(db.statement("SELECT position FROM projection_tracking WHERE name = %s"), (PROJECTION_NAME,))
            tracked = cursor.fetchone()
            if tracked is None or int(tracked["position"]) < head:
                return None
            cursor.execute(db.statement(statement), params)
            return list(cursor.fetchall())

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
