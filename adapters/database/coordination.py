"""How the processes of one deployment coordinate through their database: who projects (one
leader at a time, the others stand by and take over if it goes) and how a process learns that
there is news (new events in the log, newly readable notifications).

On PostgreSQL, one dedicated connection per process does both (`PostgresListener`): it LISTENs
on every channel the process cares about and holds the leadership advisory lock while this
process leads. If the connection dies (`pg_terminate_backend`, a server restart) it reconnects
with backoff and wakes every waiter, so they catch up from the tables: nothing is lost, only
delayed; the lock died with the connection and is taken again once connected. SQLite has no
notifications: there the leader holds an exclusive file lock, and waiters are woken by this
process's own saves and otherwise poll."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg

from adapters.database.postgres import dedicated_connection
from adapters.database.url import DatabaseSettings

logger = logging.getLogger("session_events.coordination")

SQLITE_POLL = 0.2
"""How often a SQLite process looks for other processes' news."""
_LEADERSHIP_GRANT_WAIT = 1.0
_MAX_BACKOFF = 2.0


class Wakeup(Protocol):
    def wait(self, timeout: float) -> None:
        """Returns when there may be news, or after `timeout` seconds (whichever comes first)."""
        ...


class Leadership(Protocol):
    def acquire(self) -> bool:
        """True while this process leads; tries to become the leader if it does not."""
        ...

    def release(self) -> None: ...


class _EventWakeup:
    def __init__(self, news: threading.Event, poll: float | None = None) -> None:
        self._news = news
        self._poll = poll

    def wait(self, timeout: float) -> None:
        self._news.wait(timeout if self._poll is None else min(timeout, self._poll))
        self._news.clear()  # before the caller looks: news arriving from now on sets it again


class PostgresListener:
    """The one LISTEN-and-reconnect connection of a process (see the module docstring)."""

    def __init__(self, settings: DatabaseSettings, channels: Sequence[str], lock_key: int) -> None:
        self._settings = settings
        self._news = {channel: threading.Event() for channel in channels}
        self._lock_key = lock_key
        self._want_lead = threading.Event()
        self._leading = threading.Event()
        self._lead_changed = threading.Condition()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._backoff = 0.1
        self._next_lock_attempt = 0.0
        self._thread = threading.Thread(target=self._run, name="session-events-listener", daemon=True)

    def wakeup(self, channel: str) -> Wakeup:
        return _EventWakeup(self._news[channel])

    def leadership(self) -> Leadership:
        return _ListenerLeadership(self)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(5)
        self._disconnect()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = self._conn if self._conn is not None else self._connect()
                self._settle_leadership(conn)
                for notification in conn.notifies(timeout=0.25, stop_after=1):
                    news = self._news.get(notification.channel)
                    if news is not None:
                        news.set()
                self._backoff = 0.1
            except psycopg.Error as error:
                logger.warning("listener connection lost (%s); reconnecting", error)
                self._disconnect()
                self._stopping.wait(self._backoff)
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)
            except Exception:
                logger.exception("listener failed; reconnecting")
                self._disconnect()
                self._stopping.wait(_MAX_BACKOFF)

    def _connect(self) -> psycopg.Connection[Any]:
        conn = dedicated_connection(self._settings, "session-events listener")
        for channel in self._news:
            conn.execute(f'LISTEN "{channel}"')
        self._conn = conn
        for news in self._news.values():  # whatever happened while disconnected: catch up now
            news.set()
        return conn

    def _settle_leadership(self, conn: psycopg.Connection[Any]) -> None:
        if self._want_lead.is_set() and not self._leading.is_set():
            if time.monotonic() < self._next_lock_attempt:
                return
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
            # Tell the waiter either way; a standby tries again a second later.
            self._set_leading(bool(row and row[0]))
            self._next_lock_attempt = time.monotonic() + _LEADERSHIP_GRANT_WAIT
        elif not self._want_lead.is_set() and self._leading.is_set():
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._lock_key,))
            self._set_leading(False)

    def _set_leading(self, leading: bool) -> None:
        with self._lead_changed:
            if leading:
                self._leading.set()
            else:
                self._leading.clear()
            self._lead_changed.notify_all()

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        self._set_leading(False)  # a session advisory lock dies with its connection


class _ListenerLeadership:
    def __init__(self, listener: PostgresListener) -> None:
        self._listener = listener

    def acquire(self) -> bool:
        listener = self._listener
        if listener._leading.is_set():
            return True
        with listener._lead_changed:
            listener._want_lead.set()
            listener._lead_changed.wait(_LEADERSHIP_GRANT_WAIT)
        return listener._leading.is_set()

    def release(self) -> None:
        self._listener._want_lead.clear()


class FileLeadership:
    """SQLite: an exclusive lock on a file beside the database (`<db>.projection-lock`)."""

    def __init__(self, database_path: str) -> None:
        self._lock_path = None if database_path == ":memory:" else database_path + ".projection-lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._lock_path is None:
            return True
        if self._fd is None:
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # re-taking a lock this fd holds succeeds
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def local_wakeup(news: threading.Event) -> Wakeup:
    """SQLite: woken by `news` (set by this process), and polling for other processes'."""
    return _EventWakeup(news, poll=SQLITE_POLL)
