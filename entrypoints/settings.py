"""Every setting of the service, read from the environment once, by the composition root, and
passed down. Nothing else reads the environment (the event store library is given its settings
explicitly and never sees the process's environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from adapters.database.url import DatabaseSettings, InvalidDatabaseUrl

ENVIRONMENT = {
    "DATABASE_URL": "the store: unset for ./session-events.db, sqlite:///..., postgresql://...",
    "SESSION_EVENTS_POOL_SIZE": "PostgreSQL connections each process keeps open (default 8)",
    "SESSION_EVENTS_POOL_MAX_OVERFLOW": "extra PostgreSQL connections a process may open under load (default 24)",
    "SESSION_EVENTS_CONNECT_TIMEOUT": "whole seconds to wait for a connection before answering 503 (default 2)",
    "SESSION_EVENTS_KEEPALIVE_SECONDS": "seconds between keep-alive comments on live streams (default 10)",
    "SESSION_EVENTS_RATE_LIMIT": "requests per minute per token, across all processes (default: unlimited)",
}
"""Each setting and what it does, as `session-events --help` and the README list them."""


class InvalidSetting(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    database: DatabaseSettings
    keepalive_seconds: float = 10.0
    """Under the contract's 15 s between keep-alives on a live stream, with room for a slow network."""
    rate_limit: int | None = None
    """Requests per minute per token (None: unlimited)."""

    @property
    def request_threads(self) -> int:
        """Blocking handlers wait on the store: one thread per connection the pool may open."""
        return self.database.pool_size + self.database.max_overflow

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        cwd = cwd or Path.cwd()
        url = environ.get("DATABASE_URL", "").strip()
        database = DatabaseSettings.from_url(url, cwd) if url else DatabaseSettings.default(cwd)
        database = database.with_pool(
            size=_number(environ, "SESSION_EVENTS_POOL_SIZE", 8, int, minimum=1),
            max_overflow=_number(environ, "SESSION_EVENTS_POOL_MAX_OVERFLOW", 24, int, minimum=0),
            connect_timeout=_number(environ, "SESSION_EVENTS_CONNECT_TIMEOUT", 2, int, minimum=1),
        )
        return cls(
            database=database,
            keepalive_seconds=_number(environ, "SESSION_EVENTS_KEEPALIVE_SECONDS", 10.0, float, minimum=0.1),
            rate_limit=_optional_number(environ, "SESSION_EVENTS_RATE_LIMIT", int, minimum=1),
        )


N = TypeVar("N", int, float)


def _optional_number(environ: Mapping[str, str], name: str, kind: type[N], *, minimum: N) -> N | None:
    if not environ.get(name, "").strip():
        return None
    return _number(environ, name, minimum, kind, minimum=minimum)


def _number(environ: Mapping[str, str], name: str, default: N, kind: type[N], *, minimum: N) -> N:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise InvalidSetting(f"{name}={text!r}: expected a number") from None
    if value < minimum:
        raise InvalidSetting(f"{name}={text!r}: must be at least {minimum}")
    return value


__all__ = ["ENVIRONMENT", "InvalidDatabaseUrl", "InvalidSetting", "Settings"]
