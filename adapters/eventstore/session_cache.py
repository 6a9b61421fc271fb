"""The sessions this process has seen, so that recording in a session it holds costs no read.

Entries are never changed once cached (copy on write): a reader may keep the object it was
given while a writer decides on its own copy and then caches that. The cache is bounded (least
recently used first out), so memory does not grow with the number of sessions."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

from domain.session import Session

CACHE_SIZE = 2000


def working_copy(session: Session) -> Session:
    """A copy of `session` to change. Every attribute of a session is an immutable value (ids,
    numbers, texts, times: `tests/unit/test_session_cache.py` keeps it so), so a shallow copy with
    its own list of pending events is a full copy, at a tenth of the cost of a deep one."""
    clone = copy.copy(session)
    clone.__dict__["_pending_events"] = []
    return clone


class SessionCache:
    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._sessions: OrderedDict[int, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, number: int) -> Session | None:
        with self._lock:
            session = self._sessions.get(number)
            if session is not None:
                self._sessions.move_to_end(number)
            return session

    def put(self, session: Session) -> None:
        """Caches `session` unless a later version of it is already cached (a slower reader
        must not replace what a writer has just saved)."""
        with self._lock:
            cached = self._sessions.get(session.number)
            if cached is not None and cached.version > session.version:
                self._sessions.move_to_end(session.number)
                return
            self._sessions[session.number] = session
            self._sessions.move_to_end(session.number)
            while len(self._sessions) > self._size:
                self._sessions.popitem(last=False)

    def evict(self, number: int) -> None:
        with self._lock:
            self._sessions.pop(number, None)

    def __len__(self) -> int:
        return len(self._sessions)
