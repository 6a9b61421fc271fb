"""Drives the projection in the background of every service process.

One process projects at a time (the leader); the others stand by and take over if it goes.
On PostgreSQL leadership is a session advisory lock held by a dedicated connection, which also
LISTENs to the log's channel (the library NOTIFYs it on every append) so the leader wakes at
once. The library cannot subscribe to SQLite, so there the leader holds an exclusive file lock,
is woken by saves made in its own process, and polls for the others'."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from typing import Any, Protocol

import psycopg

from adapters.readmodel.projection import ProjectionConflict, SessionEventsProjection
from adapters.settings import StoreSettings

logger = logging.getLogger("session_events.projection")

_ADVISORY_LOCK_KEY = 0x5E55_10E5  # "session events" projection leadership
_SQLITE_POLL = 0.2
_RETRY_AFTER_FAILURE = 1.0


class Leadership(Protocol):
    def acquire(self) -> bool: ...
    def wait_for_news(self, timeout: float) -> None: ...
    def release(self) -> None: ...


class PostgresLeadership:
    def __init__(self, settings: StoreSettings, channel: str) -> None:
        self._settings = settings
        self._channel = channel
        self._conn: psycopg.Connection[Any] | None = None

    def acquire(self) -> bool:
        if self._conn is None or self._conn.closed:
            self._conn = self._settings.dedicated_connection("session-events projection")
        locked = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,)).fetchone()
        if locked and locked[0]:
            self._conn.execute(f'LISTEN "{self._channel}"')
            return True
        return False

    def wait_for_news(self, timeout: float) -> None:
        assert self._conn is not None
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            pass

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class SQLiteLeadership:
    def __init__(self, database_path: str, news: threading.Event) -> None:
        self._lock_path = None if database_path == ":memory:" else database_path + ".projection-lock"
        self._news = news
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._lock_path is None:
            return True
        if self._fd is None:
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def wait_for_news(self, timeout: float) -> None:
        self._news.wait(min(timeout, _SQLITE_POLL))
        self._news.clear()

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class ProjectionWorker:
    def __init__(self, projection: SessionEventsProjection, leadership: Leadership) -> None:
        self._projection = projection
        self._leadership = leadership
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-events-projection", daemon=True)
        self.is_leader = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)
        self._leadership.release()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self._leadership.acquire():
                    self.is_leader = False
                    self._stopping.wait(1.0)
                    continue
                self.is_leader = True
                while not self._stopping.is_set():
                    try:
                        consumed = self._projection.process_batch()
                    except ProjectionConflict:  # another projector (a rebuild) moved first: go on from there
                        continue
                    if consumed < self._projection.batch_size:
                        self._leadership.wait_for_news(timeout=1.0)
            except Exception:
                logger.exception("projection failed; retrying in %.0f s", _RETRY_AFTER_FAILURE)
                self.is_leader = False
                self._leadership.release()
                self._stopping.wait(_RETRY_AFTER_FAILURE)
