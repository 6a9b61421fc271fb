"""API tokens, stored only as SHA-256 hashes: a leaked table reveals no usable token."""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from adapters.database.base import Database
from application.scope import Scope

TOKEN_PREFIX = "se_"  # noqa: S105 - a marker, not a secret

def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HashedTokenStore:
    """Known tokens are remembered for `CACHE_SECONDS`, sparing a database read per request
    (tokens cannot be revoked yet; a revocation command would clear this cache)."""

    CACHE_SECONDS = 60.0
    CACHE_SIZE = 10_000

    def __init__(self, database: Database) -> None:
        self._db = database
        self._known: dict[str, tuple[Scope, float]] = {}

    def issue(self, scope: Scope) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.statement(
                    "INSERT INTO api_tokens (token_hash, account_id, user_id, created_at) VALUES (%s, %s, %s, %s)"
                ),
                (
                    _hash(token),
                    scope.account_id,
                    scope.user_id,
                    self._db.time(now),
                ),
            )
        return token

    def scope_of(self, token: str) -> Scope | None:
        token_hash = _hash(token)
        remembered = self._known.get(token_hash)
        if remembered is not None and remembered[1] > time.monotonic():
            return remembered[0]
        rows = self._db.fetch_all("SELECT account_id, user_id FROM api_tokens WHERE token_hash = %s", (token_hash,))
        if not rows:
            return None
        scope = Scope(account_id=int(rows[0]["account_id"]), user_id=int(rows[0]["user_id"]))
        if len(self._known) >= self.CACHE_SIZE:
            self._known.clear()
        self._known[token_hash] = (scope, time.monotonic() + self.CACHE_SECONDS)
        return scope
