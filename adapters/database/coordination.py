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
    """The one LISTEN-and-reconnect connection of a process (see the module docstring). It holds
    any number of leaderships (one advisory lock each) and wakes any number of waiters."""

    def __init__(self, settings: DatabaseSettings, channels: Sequence[str]) -> None:
        self._settings = settings
        self._channels = list(channels)
        self._waiters: dict[str, list[threading.Event]] = {channel: [] for channel in channels}
        self._leases: dict[int, _Lease] = {}
        self._lock = threading.Lock()
        self._lead_changed = threading.Condition()
        self._stopping = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._backoff = 0.1
        self._thread = threading.Thread(target=self._run, name="session-events-listener", daemon=True)

    def wakeup(self, channel: str) -> Wakeup:
        """A waiter of its own on `channel` (waiters never take each other's news)."""
        news = threading.Event()
        with self._lock:
            self._waiters[channel].append(news)
        return _EventWakeup(news)

    def leadership(self, key: int) -> Leadership:
        with self._lock:
            lease = self._leases.setdefault(key, _Lease(key))
        return _ListenerLeadership(self, lease)

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
                self._settle_leaderships(conn)
                for notification in conn.notifies(timeout=0.25, stop_after=1):
                    self._wake(notification.channel)
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

    def _wake(self, channel: str) -> None:
        with self._lock:
            waiters = list(self._waiters.get(channel, ()))
        for news in waiters:
            news.set()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = dedicated_connection(self._settings, "session-events listener")
        for channel in self._channels:
            conn.execute(f'LISTEN "{channel}"')
        self._conn = conn
        for channel in self._channels:  # whatever happened while disconnected: catch up now
            self._wake(channel)
        return conn

    def _settle_leaderships(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            leases = list(self._leases.values())
        for lease in leases:
            if lease.wanted.is_set() and not lease.held.is_set():
                if time.monotonic() < lease.next_attempt:
                    continue
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lease.key,)).fetchone()
                # Tell the waiter either way; a standby tries again a second later.
                self._set_held(lease, bool(row and row[0]))
                lease.next_attempt = time.monotonic() + _LEADERSHIP_GRANT_WAIT
            elif not lease.wanted.is_set() and lease.held.is_set():
                conn.execute("SELECT pg_advisory_unlock(%s)", (lease.key,))
                self._set_held(lease, False)

    def _set_held(self, lease: _Lease, held: bool) -> None:
        with self._lead_changed:
            if held:
                lease.held.set()
            else:
                lease.held.clear()
            lease.answered.set()
            self._lead_changed.notify_all()

    def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        with self._lock:
            leases = list(self._leases.values())
        for lease in leases:  # a session advisory lock dies with its connection
            self._set_held(lease, False)


class _Lease:
    def __init__(self, key: int) -> None:
        self.key = key
        self.wanted = threading.Event()
        self.held = threading.Event()
        self.answered = threading.Event()
        self.next_attempt = 0.0


class _ListenerLeadership:
    def __init__(self, listener: PostgresListener, lease: _Lease) -> None:
        self._listener = listener
        self._lease = lease

    def acquire(self) -> bool:
        lease = self._lease
        if lease.held.is_set():
            return True
        with self._listener._lead_changed:
            lease.answered.clear()
            lease.wanted.set()
            self._listener._lead_changed.wait_for(lease.answered.is_set, _LEADERSHIP_GRANT_WAIT)
        return lease.held.is_set()

    def release(self) -> None:
        self._lease.wanted.clear()


class FileLeadership:
    """SQLite: an exclusive lock on a file beside the database (`<db>.<projection>.projection-lock`)."""

    def __init__(self, database_path: str, name: str) -> None:
        self._lock_path = None if database_path == ":memory:" else f"{database_path}.{name}.projection-lock"
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


def polling_wakeup() -> Wakeup:
    """A waiter that nothing wakes: it only ever waits out its timeout (SQLite's pollers)."""
    return _EventWakeup(threading.Event())


def local_wakeup(news: threading.Event) -> Wakeup:
    """SQLite: woken by `news` (set by this process), and polling for other processes'."""
    return _EventWakeup(news, poll=SQLITE_POLL)
