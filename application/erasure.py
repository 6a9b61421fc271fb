"""The use cases that erase sessions: one at its owner's request, or all those left idle for a
given time (`sessions prune`). Erasure is final, and complete: see ADR 0013."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from application.errors import SessionNotFound
from application.ports import SessionEraser
from application.scope import Scope

logger = logging.getLogger("session_events.erasure")

PRUNE_BATCH = 100
"""Sessions erased per transaction by a prune: appends wait for each one, so keep it short."""
MAX_PRUNE_BATCH = 500


class SessionErasure:
    def __init__(self, eraser: SessionEraser, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._eraser = eraser
        self._clock = clock

    def erase_session(self, scope: Scope, session_id: int) -> None:
        """Erases one of the scope's sessions; a missing or foreign one is `SessionNotFound`."""
        if not self._eraser.erase([session_id], owner=scope):
            raise SessionNotFound(session_id)
        self._purge()

    def prune(self, older_than: timedelta, *, dry_run: bool = False, batch_size: int = PRUNE_BATCH) -> int:
        """Erases every session whose last event was received more than `older_than` ago (a
        session without events: created), a batch at a time, so that memory stays flat and
        appends never wait long; returns how many (with `dry_run`, how many it would)."""
        if not 1 <= batch_size <= MAX_PRUNE_BATCH:
            raise ValueError(f"a prune batch holds 1 to {MAX_PRUNE_BATCH} sessions, not {batch_size}")
        before = self._clock() - older_than
        after, erased = 0, 0
        while candidates := self._eraser.idle_sessions(before, after, batch_size):
            after = candidates[-1]
            erased += len(self._eraser.erase(candidates, idle_before=before, dry_run=dry_run))
        if erased and not dry_run:
            self._purge()
        return erased

    def _purge(self) -> None:
        if not self._eraser.purge():
            logger.warning("erased; the store could not finish purging its files yet (the next erasure will)")
