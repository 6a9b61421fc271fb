"""Requests per minute per token, counted in the database so that every worker process (and
every machine) shares one count.

A fixed window: minute `floor(unix time / 60)`. Each request is one upsert that adds one to the
token's row for the current minute and returns the new count, atomically (`INSERT ... ON
CONFLICT DO UPDATE ... RETURNING`): one round trip, no read-then-write race between processes.
A request over the limit is refused with the seconds left in the minute; it still counts (the
row only grows), which changes nothing: the window is already full. The price of a fixed window
is a burst of up to twice the limit across a minute's boundary; a sliding window would cost a
second row read per request. Windows are stamped by each process's clock (NTP keeps machines
within milliseconds of each other, far under the window). Rows of past minutes are pruned by
each process at most once a minute."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from adapters.database.base import Database
from application.errors import RateLimited, StoreUnavailable

logger = logging.getLogger("session_events.rate_limit")

WINDOW_SECONDS = 60


class DatabaseRateLimiter:
    """The `RateLimiter` port: at most `limit` requests per token per minute."""

    def __init__(self, database: Database, limit: int, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self.limit = limit
        self._clock = clock
        self._pruned_before = 0

    def admit(self, token_id: int) -> None:
        now = self._clock()
        window = int(now // WINDOW_SECONDS)
        rows = self._db.write_one(
            "INSERT INTO rate_limit_windows (token_id, window_start, requests) VALUES (%s, %s, 1)"
            " ON CONFLICT (token_id, window_start) DO UPDATE SET requests = rate_limit_windows.requests + 1"
            " RETURNING requests",
            (token_id, window),
        )
        if int(rows[0]["requests"]) > self.limit:
            raise RateLimited(self.limit, max(1, math.ceil((window + 1) * WINDOW_SECONDS - now)))
        if window > self._pruned_before:
            self._prune(window)

    def _prune(self, window: int) -> None:
        self._pruned_before = window
        try:
            self._db.write_one("DELETE FROM rate_limit_windows WHERE window_start < %s", (window,))
        except StoreUnavailable as error:  # pruning can wait for the next minute
            logger.warning("could not prune rate limit windows: %s", error)
