"""How every serving process learns, within a second, that a token was revoked (or has expired),
and acts on it: the token store forgets it and the token's open streams are closed.

One thread per process looks at the revoked tokens whenever it is woken and at least every
`POLL_SECONDS`. On PostgreSQL `tokens revoke` NOTIFYs `TOKENS_CHANNEL` in its transaction, so the
process's listener wakes this thread at once; the poll is only a safety net (a NOTIFY missed while
the listener reconnects). SQLite has no notifications: the poll is the mechanism, twice a second.
Each look is one count on a partial index of revoked tokens; their ids are read only when the
count changed. The same tick ends the streams of tokens that have expired."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.database.coordination import Wakeup
from adapters.tokens import HashedTokenStore

logger = logging.getLogger("session_events.tokens")

POSTGRES_POLL_SECONDS = 1.0
SQLITE_POLL_SECONDS = 0.5


class RevocationWatcher:
    def __init__(
        self,
        tokens: HashedTokenStore,
        news: Wakeup,
        poll_seconds: float,
        close_streams_of: Callable[[int], None],
        close_expired_streams: Callable[[datetime], None],
    ) -> None:
        self._tokens = tokens
        self._news = news
        self._poll = poll_seconds
        self._close_streams_of = close_streams_of
        self._close_expired_streams = close_expired_streams
        self._known: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-events-revocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join(5)

    def check(self) -> None:
        """One look: forget and disconnect what was revoked since the last one."""
        revoked = self._tokens.revoked_ids()
        if revoked is not None:
            newly = revoked - self._known
            self._known = revoked
            self._tokens.forget(newly)
            for token_id in newly:
                self._close_streams_of(token_id)
        self._close_expired_streams(datetime.now(UTC))

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
            except Exception as error:  # the store is away: try again at the next tick
                logger.warning("could not check for revoked tokens: %s", error)
            self._news.wait(self._poll)
