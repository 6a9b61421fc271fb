"""`SessionEraser`: sessions erased from the log and from every table, in one transaction (ADR 0013).

What a transaction deletes, for each session: its stored events and snapshots (the library's
tables), its `session_event_ids`, `session_feed` and `session_directory` rows (`session_numbers`
is never reused), and its rows in every read model, live or being rebuilt. In its place it
appends a tombstone (`Session.Erased`: the session's number, no client data) to the log, and a
`session_erased` notification to its owner.

Everything else keeps running meanwhile, and none of it can bring the session back:
- appends: the transaction holds the log's lock, the one every append takes. An append already
  under way commits first and is erased with the rest; one that comes after finds no directory
  row under that lock and is left out (`adapters.eventstore.recorders`): a process that holds
  the session in its cache cannot write to it again, and its next read finds it gone;
- projections: every tracking row is locked first, so a projector's batch commits wholly before
  the erasure (and its rows are deleted with the others) or after it (and then it drops the
  events of sessions without a directory row, see `Projector.apply_in`). A rebuild that starts
  meanwhile meets the tombstone in the log, and erases what it has of the session then, before
  it can be swapped in.

Locks are taken in the order appends and projectors take them, so that none waits for another in
a cycle: the log first (an append takes it before anything else, then updates a directory row it
links to a conversation), then the tracking rows (by name, as a projector and a rebuild's swap
take theirs, neither of which ever takes the log's lock), then the sessions' directory rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.persistence import StoredEvent

from adapters.database.base import Database
from adapters.eventstore.log import SessionLog
from adapters.readmodel.projection import ReadModel
from adapters.readmodel.rebuild import GENERATION_MARK
from application.notifications import SESSION_ERASED
from application.scope import Scope
from domain.session import Session

MAX_SESSIONS_PER_TRANSACTION = 500
"""Also keeps `IN (...)` lists within what SQLite accepts."""

_IDLE_SESSIONS = (
    "SELECT d.number FROM session_directory d WHERE d.number > %s AND d.created_at < %s"
    " AND COALESCE((SELECT e.received_at FROM session_events e WHERE e.session_id = d.number"
    " ORDER BY e.sequence DESC LIMIT 1), d.created_at) < %s ORDER BY d.number LIMIT %s"
)
"""The read model's word for each session's last event: one probe of its primary key per session."""


@dataclass(frozen=True)
class _Doomed:
    number: int
    session_uuid: UUID
    account_id: int
    user_id: int
    last_version: int


class LogErasure:
    def __init__(self, log: SessionLog, database: Database, models: Sequence[ReadModel]) -> None:
        self._log = log
        self._db = database
        self._models = models
        self._events_table: str = log.recorder.events_table_name  # type: ignore[attr-defined]  # both stores' recorders
        snapshots = log.snapshots.recorder if log.snapshots is not None else None
        self._snapshots_table: str | None = getattr(snapshots, "events_table_name", None)

    def idle_sessions(self, before: datetime, after: int, limit: int) -> Sequence[int]:
        moment = self._db.time(before)
        rows = self._db.fetch_all(_IDLE_SESSIONS, (after, moment, moment, limit))
        return [int(row["number"]) for row in rows]

    def erase(
        self,
        session_ids: Sequence[int],
        owner: Scope | None = None,
        idle_before: datetime | None = None,
        dry_run: bool = False,
    ) -> list[int]:
        numbers = sorted({number for number in session_ids if number >= 1})
        if not numbers:
            return []
        if len(numbers) > MAX_SESSIONS_PER_TRANSACTION:
            raise ValueError(f"at most {MAX_SESSIONS_PER_TRANSACTION} sessions per erasure, not {len(numbers)}")
        db = self._db
        with db.transaction(commit=not dry_run) as cursor:
            db.lock_log(cursor)
            tracking = db.select_for_update(cursor, "SELECT name FROM projection_tracking ORDER BY name")
            rows = self._lock_directory_rows(cursor, numbers, owner)
            doomed = []
            for row in rows:
                session, last = self._with_last_event(cursor, row)
                if idle_before is None or last is None or self._recorded_at(last) < idle_before:
                    doomed.append(session)
            if not doomed or dry_run:
                return [d.number for d in doomed]
            head = db.log_head(cursor)  # read before anything is deleted: positions only go up
            self._delete_rows(cursor, doomed)
            for session in doomed:
                head = self._append_tombstone(cursor, session, head)
            for model in self._models:
                for tables in self._generations(model, [row["name"] for row in tracking]):
                    model.erase(db, cursor, tables, [d.number for d in doomed])
        return [d.number for d in doomed]

    def purge(self) -> bool:
        return self._db.purge_deleted()

    # --- inside the erasure's transaction ----------------------------------------------------
    def _lock_directory_rows(self, cursor: Any, numbers: Sequence[int], owner: Scope | None) -> list[Any]:
        marks = ", ".join(["%s"] * len(numbers))
        columns = "number, session_uuid, account_id, user_id"
        statement = f"SELECT {columns} FROM session_directory WHERE number IN ({marks})"  # noqa: S608 (placeholders)
        params: list[Any] = list(numbers)
        if owner is not None:
            statement += " AND account_id = %s AND user_id = %s"
            params += [owner.account_id, owner.user_id]
        return self._db.select_for_update(cursor, statement + " ORDER BY number", params)

    def _with_last_event(self, cursor: Any, row: Any) -> tuple[_Doomed, StoredEvent | None]:
        """The session, and its last stored event (read under the log's lock: nothing can follow it)."""
        session_uuid = self._db.read_uuid(row["session_uuid"])
        cursor.execute(
            self._db.statement(
                f"SELECT originator_version, topic, state FROM {self._events_table} WHERE originator_id = %s"  # noqa: S608 (the library's table)
                " ORDER BY originator_version DESC LIMIT 1"
            ),
            (self._db.log_id(session_uuid),),
        )
        found = cursor.fetchone()
        last = None
        if found is not None:
            last = StoredEvent(session_uuid, int(found["originator_version"]), found["topic"], bytes(found["state"]))
        session = _Doomed(
            number=int(row["number"]),
            session_uuid=session_uuid,
            account_id=int(row["account_id"]),
            user_id=int(row["user_id"]),
            last_version=last.originator_version if last is not None else 0,
        )
        return session, last

    def _recorded_at(self, stored: StoredEvent) -> datetime:
        """When the event was recorded: the library's timestamp, the `received_at` of the API."""
        event = self._log.mapper.to_domain_event(stored)
        if not isinstance(event, CanMutateAggregate):
            raise TypeError(f"a {type(event).__name__} in session {stored.originator_id}'s log")
        return event.timestamp

    def _delete_rows(self, cursor: Any, doomed: Sequence[_Doomed]) -> None:
        db = self._db
        by_log_id = [(db.log_id(d.session_uuid),) for d in doomed]
        by_number = [(d.number,) for d in doomed]
        deletes = [
            (f"DELETE FROM {self._events_table} WHERE originator_id = %s", by_log_id),  # noqa: S608 (the library's table)
            ("DELETE FROM session_event_ids WHERE session_id = %s", by_number),
            ("DELETE FROM session_feed WHERE session_id = %s", by_number),
            ("DELETE FROM session_directory WHERE number = %s", by_number),
        ]
        if self._snapshots_table is not None:
            deletes.append((f"DELETE FROM {self._snapshots_table} WHERE originator_id = %s", by_log_id))  # noqa: S608 (the library's table)
        for statement, params in deletes:
            cursor.executemany(db.statement(statement), params)

    def _append_tombstone(self, cursor: Any, session: _Doomed, head: int) -> int:
        """The tombstone follows the session's last event (an append that loaded the session
        before the erasure then conflicts with it), at the end of the log; the owner is told
        at the same position, once the projections have passed it."""
        db = self._db
        tombstone = Session.Erased.of(session.number, session.last_version)
        position = db.append_to_log(cursor, self._log.mapper.to_stored_event(tombstone), head)
        cursor.execute(
            db.statement(
                "INSERT INTO session_feed (position, kind, session_id, account_id, user_id, payload, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            ),
            (
                position,
                SESSION_ERASED,
                session.number,
                session.account_id,
                session.user_id,
                json.dumps({"session_id": session.number}),
                db.now(),
            ),
        )
        return position

    @staticmethod
    def _generations(model: ReadModel, tracking: Sequence[str]) -> list[dict[str, str]]:
        """The model's live tables, and those of every generation a rebuild has made of it (under
        way, or left by one interrupted): each has a tracking row named like its tables."""
        rebuilding = model.name + GENERATION_MARK
        suffixes = [""] + [name[len(model.name) :] for name in tracking if name.startswith(rebuilding)]
        return [{table: table + suffix for table in model.tables} for suffix in suffixes]
