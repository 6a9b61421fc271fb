"""API tokens, stored only as SHA-256 hashes: a leaked table reveals no usable token."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from adapters.database import Database
from application.scope import Scope

TOKEN_PREFIX = "se_"  # noqa: S105 - a marker, not a secret

_DDL = {
    "postgres": "CREATE TABLE IF NOT EXISTS api_tokens (token_hash text PRIMARY KEY,"
    " account_id bigint NOT NULL, user_id bigint NOT NULL, created_at timestamptz NOT NULL)",
    "sqlite": "CREATE TABLE IF NOT EXISTS api_tokens (token_hash TEXT PRIMARY KEY,"
    " account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, created_at TEXT NOT NULL)",
}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class HashedTokenStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    def create_tables(self) -> None:
        self._db.execute_script([_DDL[self._db.dialect]])

    def issue(self, scope: Scope) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._db.transaction(commit=True) as cursor:
            cursor.execute(
                self._db.sql(
                    "INSERT INTO api_tokens (token_hash, account_id, user_id, created_at) VALUES (%s, %s, %s, %s)"
                ),
                (
                    _hash(token),
                    scope.account_id,
                    scope.user_id,
                    now if self._db.dialect == "postgres" else now.isoformat(),
                ),
            )
        return token

    def scope_of(self, token: str) -> Scope | None:
        rows = self._db.fetch_all("SELECT account_id, user_id FROM api_tokens WHERE token_hash = %s", (_hash(token),))
        if not rows:
            return None
        return Scope(account_id=int(rows[0]["account_id"]), user_id=int(rows[0]["user_id"]))
