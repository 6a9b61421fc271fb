"""Fixtures: every persistence behaviour runs on SQLite and on PostgreSQL.

PostgreSQL tests use a database of their own, created for the run and dropped after it. They
skip when no server answers, except under CI (CI=true), where they fail."""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.database.url import DatabaseSettings
from application.scope import Scope
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORES = ["sqlite", "postgres"]

_accounts = itertools.count(random.randint(10_000, 10_000_000) * 1000)


def settings_for(database_url: str, keepalive_seconds: float = 10.0) -> Settings:
    return Settings(database=DatabaseSettings.from_url(database_url), keepalive_seconds=keepalive_seconds)


def postgres_available() -> bool:
    try:
        psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def require_postgres() -> None:
    if postgres_available():
        return
    if UNDER_CI:
        pytest.fail(f"PostgreSQL is required under CI and did not answer at {POSTGRES_ADMIN_URL}")
    pytest.skip("no PostgreSQL server on this machine")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "se_test") -> Iterator[str]:
    """A new empty database; yields its URL and drops it afterwards."""
    name = f"{prefix}_{os.getpid()}_{random.randint(0, 10**9)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'session-events.db'}"
    else:
        require_postgres()
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture(scope="session", params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with store_url(request.param, tmp_path_factory.mktemp(request.param)) as url:
        yield url


@pytest.fixture(scope="session")
def service(database_url: str) -> Iterator[Service]:
    running = bootstrap(settings_for(database_url))
    yield running
    running.close()


@pytest.fixture
def scope() -> Scope:
    """A scope of its own for each test, so tests sharing a store never see each other."""
    account = next(_accounts)
    return Scope(account_id=account, user_id=account + 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """`session-events serve` in a subprocess: HTTP tests talk to a real server."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        workers: int = 1,
        log_level: str = "warning",
        port: int | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # Keep-alives every second, so stream readers notice a closed stream promptly.
        self.env = {**os.environ, "DATABASE_URL": database_url, "SESSION_EVENTS_KEEPALIVE_SECONDS": "1", **(env or {})}
        self.workdir = workdir
        self.log = workdir / f"server-{self.port}.log"
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "entrypoints.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--log-level",
                log_level,
                *extra_args,
            ],
            cwd=workdir,
            env=self.env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        self._wait_until_healthy()

    def _wait_until_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy in {timeout} s: {self.log.read_text()}")

    def token(self, scope: Scope) -> str:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "entrypoints.cli",
                "tokens",
                "create",
                "--account-id",
                str(scope.account_id),
                "--user-id",
                str(scope.user_id),
            ],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().splitlines()[-1]

    def stop(self, timeout: float = 15) -> float:
        """Asks the server to shut down (SIGTERM); returns how long it took to exit."""
        started = time.monotonic()
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        return time.monotonic() - started


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    running = ServerProcess(database_url, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
def client(server: ServerProcess, scope: Scope) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as this test's own scope."""
    headers = {"Authorization": f"Bearer {server.token(scope)}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        yield http
