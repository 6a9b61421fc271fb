"""Where a case's data lives: a database of its own, made for it and removed after it.

PostgreSQL: `bench_<pid>_<n>` on the server of the admin URL, dropped `WITH (FORCE)` at the end
of the case, and again at exit for any still there (Ctrl-C included): the suite never touches
a database it did not create. SQLite: files in a temporary directory, removed at the end."""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Store:
    kind: str
    """`postgres` or `sqlite`."""
    url: str
    """The service's DATABASE_URL."""
    workdir: Path
    """Where the case's server runs and logs (and, on SQLite, its database files live)."""

    @property
    def sqlite_path(self) -> Path:
        return Path(urlsplit(self.url).path)


class Stores:
    """Hands out fresh stores of one kind and guarantees their removal."""

    def __init__(self, kind: str, admin_url: str, root: Path) -> None:
        self.kind = kind
        self.admin_url = admin_url
        self._root = root
        self._numbers = itertools.count(1)
        self._live: set[str] = set()
        atexit.register(self.drop_all)

    @contextmanager
    def fresh(self, label: str) -> Iterator[Store]:
        n = next(self._numbers)
        workdir = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=self._root))
        if self.kind == "sqlite":
            try:
                yield Store("sqlite", f"sqlite:///{workdir / 'session-events.db'}", workdir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
            return
        name = f"bench_{os.getpid()}_{n}"
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self._live.add(name)
        try:
            yield Store("postgres", _with_database(self.admin_url, name), workdir)
        finally:
            self._drop(name)
            shutil.rmtree(workdir, ignore_errors=True)

    def _drop(self, name: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._live.discard(name)

    def drop_all(self) -> None:
        for name in list(self._live):
            with suppress(psycopg.Error):
                self._drop(name)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))
