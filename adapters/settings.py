"""Where the data lives, read from `DATABASE_URL` (unset: an SQLite file in the working directory)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import psycopg

DEFAULT_SQLITE_FILE = "session-events.db"


class InvalidDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class StoreSettings:
    kind: Literal["sqlite", "postgres"]
    sqlite_path: str = ""
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = ""
    user: str = ""
    password: str = ""
    pool_size: int = 8
    max_overflow: int = 24
    connect_timeout: int = 2

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> StoreSettings:
        environ = dict(os.environ if environ is None else environ)
        url = environ.get("DATABASE_URL", "").strip()
        if not url:
            return cls(kind="sqlite", sqlite_path=str(Path.cwd() / DEFAULT_SQLITE_FILE))
        return cls.from_url(url)

    @classmethod
    def from_url(cls, url: str) -> StoreSettings:
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            path = unquote(parts.path)
            if parts.netloc or not path.startswith("/") or path == "/":
                raise InvalidDatabaseUrl(f"{url!r}: expected sqlite:////absolute/path/file.db")
            return cls(kind="sqlite", sqlite_path=path if path != "/:memory:" else ":memory:")
        if parts.scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            dbname = unquote(parts.path.lstrip("/"))
            if not dbname or not parts.hostname:
                raise InvalidDatabaseUrl(f"{url!r}: expected postgresql://user[:password]@host:port/dbname")
            return cls(
                kind="postgres",
                host=parts.hostname,
                port=parts.port or 5432,
                dbname=dbname,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
            )
        raise InvalidDatabaseUrl(f"{url!r}: DATABASE_URL must start with sqlite:// or postgresql://")

    def dedicated_connection(self, application_name: str) -> Any:
        """A PostgreSQL connection outside the pool, for sessions that must live on their own
        (LISTEN, advisory locks); autocommit, named so operators can see it in pg_stat_activity."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            application_name=application_name,
        )

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"SQLite {self.sqlite_path}"
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}"
