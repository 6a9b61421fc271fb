"""What a token's listing says of it, and the errors token checks raise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.errors import RateLimited
from application.scope import Scope
from application.tokens import ACTIVE, EXPIRED, REVOKED, TokenInfo, TokenNotFound

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def info(expires_at: datetime | None = None, revoked_at: datetime | None = None) -> TokenInfo:
    return TokenInfo(7, "ci", Scope(1, 2), NOW - timedelta(days=1), None, expires_at, revoked_at)


@pytest.mark.parametrize(
    ("token", "state"),
    [
        (info(), ACTIVE),
        (info(expires_at=NOW + timedelta(seconds=1)), ACTIVE),
        (info(expires_at=NOW), EXPIRED),  # expiry is inclusive
        (info(expires_at=NOW - timedelta(seconds=1)), EXPIRED),
        (info(revoked_at=NOW), REVOKED),
        (info(expires_at=NOW - timedelta(days=1), revoked_at=NOW), REVOKED),  # revoked wins
    ],
)
def test_a_token_s_state(token: TokenInfo, state: str) -> None:
    assert token.state(NOW) == state


def test_an_unknown_token_id_is_named() -> None:
    missing = TokenNotFound(42)
    assert (missing.token_id, str(missing)) == (42, "no token 42")


def test_a_rate_limited_call_says_when_to_retry() -> None:
    limited = RateLimited(60, 17)
    assert (limited.limit, limited.retry_after) == (60, 17)
    assert str(limited) == "more than 60 requests a minute with this token; retry in 17 s"
