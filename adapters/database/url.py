"""Where the data lives, parsed from a `DATABASE_URL`. Parsing only: nothing here connects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_SQLITE_FILE = "session-events.db"
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


class InvalidDatabaseUrl(ValueError):
    pass


@dataclass(frozen=True)
class DatabaseSettings:
    """The store and how to reach it. `options` are libpq connection parameters given in the
    URL's query string (`?sslmode=require&application_name=x`), passed on to every connection."""

    kind: Literal["sqlite", "postgres"]
    sqlite_path: str = ""
    host: str = "127.0.0.1"
    port: int = 5432
    dbname: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    options: Mapping[str, str] = field(default_factory=dict)
    pool_size: int = 8
    max_overflow: int = 24
    connect_timeout: int = 2
    """Seconds to wait to connect, or for a pooled connection, before giving up (whole seconds:
    the library and libpq take no fractions)."""

    @classmethod
    def default(cls, cwd: Path) -> DatabaseSettings:
        """The quick-start store: an SQLite file in the working directory."""
        return cls(kind="sqlite", sqlite_path=str(cwd / DEFAULT_SQLITE_FILE))

    @classmethod
    def from_url(cls, url: str, cwd: Path | None = None) -> DatabaseSettings:
        """`sqlite:////abs/path.db` (four slashes) is an absolute path and `sqlite:///rel.db` one
        relative to `cwd`, as in SQLAlchemy; the result always holds an absolute path, so every
        process of a deployment opens the same file whatever its own working directory."""
        parts = urlsplit(url.strip())
        if parts.scheme == "sqlite":
            return cls(kind="sqlite", sqlite_path=_sqlite_path(url, parts.netloc, unquote(parts.path), cwd))
        if parts.scheme in POSTGRES_SCHEMES:
            dbname = unquote(parts.path.lstrip("/"))
            if not dbname or not parts.hostname:
                raise InvalidDatabaseUrl(f"{_redacted(url)}: expected postgresql://user[:password]@host:port/dbname")
            try:
                port = parts.port or 5432
            except ValueError:
                raise InvalidDatabaseUrl(f"{_redacted(url)}: the port must be a number") from None
            return cls(
                kind="postgres",
                host=parts.hostname,
                port=port,
                dbname=dbname,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                options=dict(parse_qsl(parts.query, keep_blank_values=False)),
            )
        raise InvalidDatabaseUrl(f"{_redacted(url)}: DATABASE_URL must start with sqlite:// or postgresql://")

    def with_pool(self, size: int, max_overflow: int, connect_timeout: int) -> DatabaseSettings:
        return DatabaseSettings(
            kind=self.kind,
            sqlite_path=self.sqlite_path,
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            options=self.options,
            pool_size=size,
            max_overflow=max_overflow,
            connect_timeout=connect_timeout,
        )

    def describe(self) -> str:
        """Where the data is, without the password: for logs and for what a command tells the user."""
        if self.kind == "sqlite":
            return f"SQLite {self.sqlite_path}"
        return f"PostgreSQL {self.user}@{self.host}:{self.port}/{self.dbname}"


def _sqlite_path(url: str, netloc: str, path: str, cwd: Path | None) -> str:
    if netloc or not path.startswith("/") or path == "/":
        raise InvalidDatabaseUrl(
            f"{url!r}: expected sqlite:////absolute/path/file.db or sqlite:///relative/path/file.db"
        )
    if path == "/:memory:":
        return ":memory:"
    if path.startswith("//"):
        return "/" + path.lstrip("/")
    return str((cwd or Path.cwd()) / path[1:])


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
