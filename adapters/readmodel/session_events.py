"""The `session_events` read model: one row per recorded event, for reading a session's events
in `sent_at` order. `data` and `metadata` keep the client's JSON text exactly.

Its rows are written in two places, which must agree: here, by its projector (catching up, a
rebuild, or whenever appends could not), and by appends themselves, in their own transaction,
when the projection has caught up with the log (the group statement in
`adapters.eventstore.recorders`; ADR 0017). A change to the rows is made in both; the test that
a rebuild equals the live model, row for row, compares the two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.database.base import Database
from adapters.readmodel.projection import LogEvent

NAME = "session_events"


COLUMNS = ("session_id", "sequence", "id", "event_type", "sent_at", "received_at", "data", "metadata", "position")


class SessionEvents:
    name = NAME
    tables = ("session_events",)

    def write(self, db: Database, cursor: Any, tables: Mapping[str, str], batch: Sequence[LogEvent]) -> None:
        """Every row is new (one per recorded event), so the batch goes in as one bulk insert."""
        uuid, time = db.uuid, db.time
        rows = [
            (
                log_event.session_number,
                recorded.sequence,
                uuid(recorded.event_id),
                recorded.event_type,
                time(recorded.sent_at),
                time(recorded.timestamp),
                recorded.data,
                recorded.metadata,
                log_event.position,
            )
            for log_event in batch
            if (recorded := log_event.recorded) is not None
        ]
        db.insert_rows(cursor, tables["session_events"], COLUMNS, rows)

    def erase(self, db: Database, cursor: Any, tables: Mapping[str, str], session_numbers: Sequence[int]) -> None:
        delete = db.statement(f"DELETE FROM {tables['session_events']} WHERE session_id = %s")  # noqa: S608 (our table)
        cursor.executemany(delete, [(number,) for number in session_numbers])
