"""Rebuilding a read model without downtime (blue/green).

The new generation is built beside the live one: its tables get a fresh suffix
(`session_events__r1a2b3c`) and its position a tracking row of that name, and it catches up from
the start of the log while the live model keeps serving reads and keeps projecting. Once it has
caught up, one transaction swaps it in: it locks the live tracking row (the live projector waits
on it), brings the new generation up to at least the live position, drops the live tables,
renames the new ones into their place and moves the live position to the new generation's.
Readers lock the tables they read before taking their snapshot (see `views.py`), so each read
sees one generation or the other, complete; notifications follow the live position, which never
goes back, so they neither pause nor repeat.

An interrupted rebuild (Ctrl-C, kill -9, power loss) leaves the live model untouched: what it
built is left under its suffix and removed by the next rebuild, which starts over. Two rebuilds
of one read model never run at once (a named lock)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from adapters.database import schema
from adapters.database.base import Database
from adapters.eventstore.log import SessionLog
from adapters.readmodel.projection import FEED_CHANNEL, Projector, ReadModel

logger = logging.getLogger("session_events.rebuild")

GENERATION_MARK = "__r"
"""Between a table's (or tracking row's) name and a rebuild generation's suffix."""


class RebuildInProgress(Exception):
    """Another rebuild of this read model is running."""


@dataclass(frozen=True)
class Rebuilt:
    name: str
    position: int
    events: int


def lock_name(projection: str) -> str:
    return f"rebuild-{projection}"


def is_rebuilding(database: Database, projection: str) -> bool:
    """True while a rebuild of `projection` holds its lock (in any process)."""
    with database.named_lock(lock_name(projection), wait=False) as taken:
        return not taken


class Rebuild:
    def __init__(
        self, model: ReadModel, log: SessionLog, database: Database, *, live: Projector, batch_size: int = 1000
    ) -> None:
        self._model = model
        self._log = log
        self._db = database
        self._live = live
        self._batch_size = batch_size

    def run(self, on_progress: Callable[[int], None] | None = None) -> Rebuilt:
        with self._db.named_lock(lock_name(self._model.name), wait=False) as taken:
            if not taken:
                raise RebuildInProgress(f"a rebuild of {self._model.name} is already running")
            self._remove_leftovers()
            generation = self._new_generation()
            generation.catch_up(on_progress)
            position = self._swap_in(generation)
        logger.info("rebuilt %s up to log position %s", self._model.name, position)
        return Rebuilt(self._model.name, position, self._db.count_log_events_after(0))

    def _remove_leftovers(self) -> None:
        """What an interrupted rebuild left behind (tables and tracking row of its generation)."""
        prefix = self._model.name + GENERATION_MARK
        with self._db.transaction(commit=True) as cursor:
            # The tracking rows first, then the tables: the order an erasure locks them in.
            cursor.execute(
                self._db.statement("DELETE FROM projection_tracking WHERE substr(name, 1, %s) = %s"),
                (len(prefix), prefix),
            )
            for table in self._model.tables:
                for leftover in self._db.tables_named_like(table + GENERATION_MARK):
                    cursor.execute(f"DROP TABLE IF EXISTS {leftover}")

    def _new_generation(self) -> Projector:
        suffix = GENERATION_MARK + secrets.token_hex(3)
        names = {table: table + suffix for table in self._model.tables}
        tracking = self._model.name + suffix
        with self._db.transaction(commit=True) as cursor:
            for statement in schema.projection_tables(self._db, self._model.name, names):
                cursor.execute(statement)
            cursor.execute(
                self._db.statement("INSERT INTO projection_tracking (name, position, updated_at) VALUES (%s, 0, %s)"),
                (tracking, self._db.now()),
            )
        return Projector(
            self._model, self._log, self._db, tracking_name=tracking, tables=names, batch_size=self._batch_size
        )

    def _swap_in(self, generation: Projector) -> int:
        db = self._db
        with db.transaction(commit=True) as cursor:
            cursor.execute(
                db.statement("UPDATE projection_tracking SET updated_at = %s WHERE name = %s RETURNING position"),
                (db.now(), self._live.name),
            )
            live_position = int(cursor.fetchone()["position"])  # the live projector now waits for us
            cursor.execute(db.statement("SELECT position FROM projection_tracking WHERE name = %s"), (generation.name,))
            position = int(cursor.fetchone()["position"])
            while position < live_position:  # the live model moved on meanwhile: follow it, in here
                batch, end = generation.read_log(position, self._batch_size)
                generation.apply_in(cursor, position, end, batch)
                position = end
            for table in self._model.tables:
                cursor.execute(f"DROP TABLE {table}")
                cursor.execute(f"ALTER TABLE {generation.tables[table]} RENAME TO {table}")
            cursor.execute(
                db.statement(
                    "UPDATE projection_tracking SET position = %s, updated_at = %s, state = 'live', error = NULL,"
                    " failed_position = NULL WHERE name = %s"
                ),
                (position, db.now(), self._live.name),
            )
            cursor.execute(db.statement("DELETE FROM projection_tracking WHERE name = %s"), (generation.name,))
            db.announce(cursor, FEED_CHANNEL, str(position))
        self._live.progress.advanced_to(position)
        return position
