"""The token store on both stores: migration 5 keeps the tokens a version-4 database holds, last
use is written at most once a minute per process, revocation and expiry refuse a cached token."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.database import schema
from adapters.eventstore.log import open_session_log
from adapters.tokens import HashedTokenStore
from application.scope import Scope
from application.tokens import TokenNotFound, TokenRejected
from entrypoints.bootstrap import _database, bootstrap
from tests.conftest import STORES, settings_for, store_url


@pytest.mark.parametrize("kind", STORES)
def test_migration_5_keeps_the_tokens_of_a_version_4_database(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        settings = settings_for(url)
        log = open_session_log(settings.database)
        database = _database(settings, log)
        assert schema.migrate(database, log, schema.MIGRATIONS[:4]) == [1, 2, 3, 4]  # as release 4 left it
        old_tokens = ["se_old-first", "se_old-second"]
        with database.transaction(commit=True) as cursor:
            for k, token in enumerate(old_tokens):
                cursor.execute(
                    database.statement(
                        "INSERT INTO api_tokens (token_hash, account_id, user_id, created_at) VALUES (%s, %s, %s, %s)"
                    ),
                    (
                        hashlib.sha256(token.encode()).hexdigest(),
                        7,
                        8 + k,
                        database.time(datetime(2026, 1, 1 + k, tzinfo=UTC)),
                    ),
                )
        log.close()

        service = bootstrap(settings, run_projection=False)
        try:
            assert schema.current_version(service.database) == schema.LATEST
            listed = service.tokens.tokens()
            assert [(t.scope, t.name, t.revoked_at, t.expires_at) for t in listed] == [
                (Scope(7, 8), None, None, None),
                (Scope(7, 9), None, None, None),
            ]
            assert listed[0].created_at == datetime(2026, 1, 1, tzinfo=UTC)
            assert len({t.id for t in listed}) == 2
            assert service.tokens.scope_of(old_tokens[1]) == Scope(7, 9)
            service.tokens.revoke(listed[0].id)
            assert service.tokens.scope_of(old_tokens[0]) is None
            new = service.tokens.issue(Scope(7, 10), name="new")
            assert new.id not in {t.id for t in listed}
        finally:
            service.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", STORES)
def test_last_use_is_written_at_most_once_a_minute_per_process(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        try:
            clock = Clock()
            tokens = HashedTokenStore(service.database, clock=clock)
            tokens.CACHE_SECONDS = 10.0  # so that every step below reads the token again
            issued = tokens.issue(Scope(1, 2))

            def last_used() -> datetime | None:
                return next(t.last_used_at for t in tokens.tokens() if t.id == issued.id)

            assert last_used() is None
            tokens.authenticate(issued.secret)
            first = last_used()
            assert first is not None
            for _ in range(5):
                clock.now += 20.0  # past the cache: read again; the last write may be under a minute old
                tokens.authenticate(issued.secret)
                if clock.now - 1000.0 < 60:
                    assert last_used() == first
            assert last_used() is not None and last_used() != first  # a minute on: written again
        finally:
            service.close()


@pytest.mark.parametrize("kind", STORES)
def test_revoked_and_expired_tokens_are_refused_even_when_cached(kind: str, tmp_path: Path) -> None:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        try:
            serving = HashedTokenStore(service.database)  # another process's cache
            issued = service.tokens.issue(Scope(3, 4))
            assert serving.authenticate(issued.secret).scope == Scope(3, 4)  # cached now
            service.tokens.revoke(issued.id)
            assert serving.authenticate(issued.secret).scope == Scope(3, 4)  # until it learns of it:
            assert serving.revoked_ids() == {issued.id}
            serving.forget({issued.id})
            with pytest.raises(TokenRejected, match="token revoked"):
                serving.authenticate(issued.secret)
            assert serving.revoked_ids() is None  # nothing new

            soon = service.tokens.issue(Scope(3, 4), expires_at=datetime.now(UTC) + timedelta(seconds=30))
            credential = serving.authenticate(soon.secret)
            assert credential.expires_at is not None
            past = service.tokens.issue(Scope(3, 4), expires_at=datetime.now(UTC) - timedelta(seconds=1))
            with pytest.raises(TokenRejected, match="token expired"):
                serving.authenticate(past.secret)
            with pytest.raises(TokenRejected, match="unknown token"):
                serving.authenticate("se_never-issued")
            with pytest.raises(TokenNotFound):
                service.tokens.revoke(10**9)
        finally:
            service.close()
