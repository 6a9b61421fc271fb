"""Drives the projection in the background of every service process.

One process projects at a time (the leader); the others stand by and take over if it goes (see
`adapters.database.coordination`). Leadership is checked before every batch: on PostgreSQL it
is an advisory lock that dies with its connection, and a batch written by a process that has
just lost it is still safe, because the position only moves by compare-and-set."""

from __future__ import annotations

import logging
import threading

from adapters.database.coordination import Leadership, Wakeup
from adapters.readmodel.projection import ProjectionConflict, SessionEventsProjection

logger = logging.getLogger("session_events.projection")

_STANDBY_POLL = 1.0
_RETRY_AFTER_FAILURE = 1.0
_NEWS_TIMEOUT = 1.0


class ProjectionWorker:
    def __init__(self, projection: SessionEventsProjection, leadership: Leadership, news: Wakeup) -> None:
        self._projection = projection
        self._leadership = leadership
        self._news = news
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-events-projection", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        self._leadership.release()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self._leadership.acquire():
                    self._stopping.wait(_STANDBY_POLL)
                    continue
                try:
                    consumed = self._projection.process_batch()
                except ProjectionConflict:  # another projector (a rebuild) moved first: go on from there
                    continue
                if consumed < self._projection.batch_size:
                    self._news.wait(_NEWS_TIMEOUT)
            except Exception:
                logger.exception("projection failed; retrying in %.0f s", _RETRY_AFTER_FAILURE)
                self._leadership.release()
                self._stopping.wait(_RETRY_AFTER_FAILURE)
