"""API tokens as the rest of the service sees them: who a token speaks for (`Credential`), what
an operator is shown about one (`TokenInfo`, never the token itself), and why one is refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from application.scope import Scope

ACTIVE, REVOKED, EXPIRED = "active", "revoked", "expired"


@dataclass(frozen=True)
class Credential:
    """An accepted token: its public id (the handle for revocation, streams and rate limits),
    the scope it speaks for, and when it stops being accepted (None: never)."""

    token_id: int
    scope: Scope
    expires_at: datetime | None = None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `secret` is shown once and stored only as a hash."""

    id: int
    secret: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class TokenInfo:
    """What `tokens list` shows of a token: everything but the token and its hash."""

    id: int
    name: str | None
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return EXPIRED
        return ACTIVE


class TokenRejected(Exception):
    """The token is unknown, revoked or expired; the message says which, to the token's holder."""


class TokenNotFound(Exception):
    def __init__(self, token_id: int) -> None:
        super().__init__(f"no token {token_id}")
        self.token_id = token_id
