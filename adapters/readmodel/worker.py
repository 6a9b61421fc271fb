"""Drives one projection in the background of every service process.

One process projects each projection at a time (its leader, elected per projection name); the
others stand by and take over if it goes (see `adapters.database.coordination`). Leadership is
checked before every batch: on PostgreSQL it is an advisory lock that dies with its connection,
and a batch written by a process that has just lost it is still safe, because the position only
moves by compare-and-set.

Once caught up, a worker waits for news of appends, then lets `settle` seconds pass before
projecting: under load, many appends then make one batch (one transaction) rather than one
each, which the appends themselves would otherwise wait for on the database and for the
interpreter. Reads of a read model wait for it to reach the log (read your writes), so `settle`
is also what they may wait at most beyond the transaction.

A projection that fails stays failed (and says so in `projections status`) until the failure is
cleared: each process retries a failed projection once when it starts (a fix may have been
deployed), and a rebuild replaces it."""

from __future__ import annotations

import logging
import threading

from adapters.database.coordination import Leadership, Wakeup
from adapters.readmodel.projection import ProjectionConflict, ProjectionFailed, Projector

logger = logging.getLogger("session_events.projection")

_STANDBY_POLL = 1.0
_RETRY_AFTER_FAILURE = 1.0
_FAILED_POLL = 5.0
_NEWS_TIMEOUT = 1.0


class ProjectionWorker:
    def __init__(self, projector: Projector, leadership: Leadership, news: Wakeup, settle: float = 0.0) -> None:
        self._projector = projector
        self._settle = settle
        self._leadership = leadership
        self._news = news
        self._stopping = threading.Event()
        self._retried = False
        self._thread = threading.Thread(target=self._run, name=f"projection-{projector.name}", daemon=True)

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
                if not self._retried:
                    self._retried = True
                    if self._projector.retry():
                        logger.warning("projection %s had failed; retrying it", self._projector.name)
                try:
                    consumed = self._projector.process_batch()
                except ProjectionConflict:  # another projector (a rebuild) moved first: go on from there
                    continue
                except ProjectionFailed:  # recorded and logged; wait for a rebuild or a restart
                    self._stopping.wait(_FAILED_POLL)
                    continue
                if consumed < self._projector.batch_size:
                    self._news.wait(_NEWS_TIMEOUT)
                    if self._settle:
                        self._stopping.wait(self._settle)
                    self._projector.forget_position()
            except Exception:
                logger.exception("projection %s failed; retrying in %.0f s", self._projector.name, _RETRY_AFTER_FAILURE)
                self._leadership.release()
                self._stopping.wait(_RETRY_AFTER_FAILURE)
