"""API tokens, stored only as SHA-256 hashes: a leaked table reveals no usable token.

A token is looked up by its hash (never compared as text with a stored token), and the hash
that comes back is checked with `hmac.compare_digest`: nothing about a stored token leaks through
how long a comparison takes. Accepted tokens are remembered for `CACHE_SECONDS`, sparing a
database read per request; a revocation reaches the cache through `forget` (called by
`adapters.token_revocations.RevocationWatcher` in every serving process) and expiry is checked on
every request, cached or not."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from adapters.database.base import Database
from application.errors import StoreUnavailable
from application.scope import Scope
from application.tokens import Credential, IssuedToken, TokenInfo, TokenNotFound, TokenRejected

logger = logging.getLogger("session_events.tokens")

TOKEN_PREFIX = "se_"  # noqa: S105 - a marker, not a secret
TOKENS_CHANNEL = "session_events_tokens"
"""PostgreSQL channel NOTIFYed, with the token id, when a token is revoked."""

_COLUMNS = "id, name, account_id, user_id, created_at, last_used_at, expires_at, revoked_at"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HashedTokenStore:
    """The `TokenStore` port on our database (see the module docstring)."""

    CACHE_SECONDS = 60.0
    CACHE_SIZE = 10_000
    LAST_USED_EVERY = 60.0
    """A token's last use is written at most this often per process: never a write per request."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.monotonic) -> None:
        self._db = database
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[Credential, float]] = {}
        self._revoked: set[int] = set()
        self._last_recorded: dict[int, float] = {}

    # --- issuing, listing, revoking (the commands) ------------------------------------------
    def issue(self, scope: Scope, name: str | None = None, expires_at: datetime | None = None) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        rows = self._db.write_one(
            "INSERT INTO api_tokens (token_hash, account_id, user_id, created_at, name, expires_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (
                _hash(token),
                scope.account_id,
                scope.user_id,
                self._db.now(),
                name,
                None if expires_at is None else self._db.time(expires_at),
            ),
        )
        return IssuedToken(id=int(rows[0]["id"]), secret=token, expires_at=expires_at)

    def tokens(self, account_id: int | None = None) -> list[TokenInfo]:
        if account_id is None:
            rows = self._db.fetch_all(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY id")  # noqa: S608 (constant)
        else:
            rows = self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM api_tokens WHERE account_id = %s ORDER BY id",  # noqa: S608 (constant)
                (account_id,),
            )
        return [self._info(row) for row in rows]

    def revoke(self, token_id: int) -> tuple[TokenInfo, bool]:
        """Sets `revoked_at` once (a second revocation keeps the first time) and, on PostgreSQL,
        NOTIFYs every process in the same transaction."""
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = %s"),  # noqa: S608 (constant)
                (token_id,),
            )
            rows = list(cursor.fetchall())
            if not rows:
                raise TokenNotFound(token_id)
            if rows[0]["revoked_at"] is not None:
                return self._info(rows[0]), False
            cursor.execute(
                self._db.statement(
                    f"UPDATE api_tokens SET revoked_at = %s WHERE id = %s RETURNING {_COLUMNS}"  # noqa: S608 (constant)
                ),
                (self._db.now(), token_id),
            )
            revoked = self._info(cursor.fetchone())
            self._db.announce(cursor, TOKENS_CHANNEL, str(token_id))
        self.forget([token_id])
        return revoked, True

    # --- authenticating (every request) -----------------------------------------------------
    def remembered(self, token: str) -> Credential | None:
        """The credential of a token this process accepted less than `CACHE_SECONDS` ago (revocation
        and expiry checked), without asking the store; None when `authenticate` must."""
        with self._lock:
            remembered = self._known.get(_hash(token))
        if remembered is None or remembered[1] <= self._clock():
            return None
        return self._still_valid(remembered[0], datetime.now(UTC))

    def authenticate(self, token: str) -> Credential:
        token_hash = _hash(token)
        now = datetime.now(UTC)
        with self._lock:
            remembered = self._known.get(token_hash)
        if remembered is not None and remembered[1] > self._clock():
            return self._still_valid(remembered[0], now)
        rows = self._db.fetch_all(
            "SELECT id, token_hash, account_id, user_id, expires_at, revoked_at FROM api_tokens WHERE token_hash = %s",
            (token_hash,),
        )
        if not rows or not hmac.compare_digest(str(rows[0]["token_hash"]), token_hash):
            raise TokenRejected("unknown token")
        row = rows[0]
        credential = Credential(
            token_id=int(row["id"]),
            scope=Scope(account_id=int(row["account_id"]), user_id=int(row["user_id"])),
            expires_at=None if row["expires_at"] is None else self._db.read_time(row["expires_at"]),
        )
        if row["revoked_at"] is not None:
            raise TokenRejected("token revoked")
        self._still_valid(credential, now)
        self._record_use(credential.token_id, now)
        with self._lock:
            if len(self._known) >= self.CACHE_SIZE:
                self._known.clear()
            self._known[token_hash] = (credential, self._clock() + self.CACHE_SECONDS)
        return credential

    def scope_of(self, token: str) -> Scope | None:
        try:
            return self.authenticate(token).scope
        except TokenRejected:
            return None

    def _still_valid(self, credential: Credential, now: datetime) -> Credential:
        # Checked on every request, cached or not: a revocation this process has learnt of since
        # the token was read (even while that read was under way) wins over the cache.
        if credential.token_id in self._revoked:
            raise TokenRejected("token revoked")
        if credential.expires_at is not None and credential.expires_at <= now:
            raise TokenRejected("token expired")
        return credential

    def _record_use(self, token_id: int, now: datetime) -> None:
        """Best effort: a failed write of the last use never refuses a valid token."""
        with self._lock:
            last = self._last_recorded.get(token_id)
            if last is not None and self._clock() - last < self.LAST_USED_EVERY:
                return
            self._last_recorded[token_id] = self._clock()
        try:
            self._db.write_one(
                "UPDATE api_tokens SET last_used_at = %s WHERE id = %s", (self._db.time(now), token_id)
            )
        except StoreUnavailable as error:
            logger.warning("could not record the last use of token %s: %s", token_id, error)
            with self._lock:
                self._last_recorded.pop(token_id, None)

    # --- revocations seen by this process ---------------------------------------------------
    def revoked_ids(self) -> set[int] | None:
        """Every revoked token's id, or None if the number of revoked tokens is the one this
        process already knows (a cheap count on a partial index, asked twice a second or more:
        the ids themselves are read only when something changed)."""
        rows = self._db.fetch_all("SELECT count(*) AS revoked FROM api_tokens WHERE revoked_at IS NOT NULL")
        if int(rows[0]["revoked"]) == len(self._revoked):
            return None
        return {int(row["id"]) for row in self._db.fetch_all("SELECT id FROM api_tokens WHERE revoked_at IS NOT NULL")}

    def forget(self, token_ids: Iterable[int]) -> None:
        """These tokens are revoked: refuse them from now on, cached or not."""
        ids = set(token_ids)
        with self._lock:
            self._revoked |= ids
            for token_hash in [h for h, (c, _) in self._known.items() if c.token_id in ids]:
                del self._known[token_hash]

    def _info(self, row: Any) -> TokenInfo:
        def moment(value: Any) -> datetime | None:
            return None if value is None else self._db.read_time(value)

        created = moment(row["created_at"])
        if created is None:
            raise ValueError(f"token {row['id']} has no creation time")
        return TokenInfo(
            id=int(row["id"]),
            name=row["name"],
            scope=Scope(account_id=int(row["account_id"]), user_id=int(row["user_id"])),
            created_at=created,
            last_used_at=moment(row["last_used_at"]),
            expires_at=moment(row["expires_at"]),
            revoked_at=moment(row["revoked_at"]),
        )
