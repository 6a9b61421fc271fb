"""Tokens: 256 bits from the OS's CSPRNG, shown once, stored only as their SHA-256 hash."""

from __future__ import annotations

import hashlib

from application.scope import Scope
from entrypoints.bootstrap import Service


def test_the_store_holds_only_hashes_of_long_random_tokens(service: Service) -> None:
    scope = Scope(424_242, 1)
    tokens = [service.tokens.issue(scope).secret for _ in range(20)]
    assert len(set(tokens)) == 20
    assert all(len(token) >= len("se_") + 43 for token in tokens)  # 32 random bytes, base64url
    rows = service.database.fetch_all("SELECT * FROM api_tokens WHERE account_id = %s", (scope.account_id,))
    stored = " ".join(str(value) for row in rows for value in dict(row).values())
    for token in tokens:
        assert token not in stored and token[3:] not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert service.tokens.scope_of(tokens[0]) == scope
    assert service.tokens.scope_of(tokens[0] + "x") is None
