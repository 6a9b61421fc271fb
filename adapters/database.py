"""Our own tables live in the event log's database and share its connection pool, so a
deployment has one pool per process and one place to configure it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from application.errors import StoreUnavailable

UNREACHABLE = (InterfaceError, OperationalError)


def to_sqlite_time(moment: datetime) -> str:
    """Fixed-width UTC text (years zero-padded), so that SQLite's text ordering is time ordering."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_sqlite_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


@contextmanager
def store_errors() -> Iterator[None]:
    """Turns 'cannot reach the store' into the application's `StoreUnavailable`."""
    try:
        yield
    except UNREACHABLE as error:
        raise StoreUnavailable(str(error)) from error


class Database:
    def __init__(self, datastore: PostgresDatastore | SQLiteDatastore) -> None:
        self.datastore = datastore
        self.dialect: Literal["postgres", "sqlite"] = (
            "postgres" if isinstance(datastore, PostgresDatastore) else "sqlite"
        )

    def sql(self, statement: str) -> str:
        """Statements are written with `%s` placeholders; SQLite wants `?`."""
        return statement if self.dialect == "postgres" else statement.replace("%s", "?")

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with store_errors():
            if self.dialect == "postgres":
                assert isinstance(self.datastore, PostgresDatastore)
                with self.datastore.transaction(commit=commit) as cursor:
                    yield cursor
            else:
                assert isinstance(self.datastore, SQLiteDatastore)
                with self.datastore.transaction(commit=commit) as cursor:
                    yield cursor

    def execute_script(self, statements: list[str]) -> None:
        with self.transaction(commit=True) as cursor:
            for statement in statements:
                cursor.execute(statement)

    def now(self) -> Any:
        return self.time(datetime.now(UTC))

    def time(self, moment: datetime) -> Any:
        """A time as this dialect stores it: SQLite keeps fixed-width UTC text."""
        return moment if self.dialect == "postgres" else to_sqlite_time(moment)

    def ensure_tracking_row(self, name: str) -> None:
        """A `projection_tracking` row for `name`, starting at position 0 if new."""
        with self.transaction(commit=True) as cursor:
            cursor.execute(
                self.sql(
                    "INSERT INTO projection_tracking (name, position, updated_at) VALUES (%s, 0, %s)"
                    " ON CONFLICT (name) DO NOTHING"
                ),
                (name, self.now()),
            )

    def has_table(self, name: str) -> bool:
        if self.dialect == "postgres":
            rows = self.fetch_all("SELECT to_regclass(%s) IS NOT NULL AS present", (name,))
        else:
            rows = self.fetch_all("SELECT count(*) > 0 AS present FROM sqlite_master WHERE name = %s", (name,))
        return bool(rows[0]["present"])

    def tracked_position(self, name: str) -> int:
        rows = self.fetch_all("SELECT position FROM projection_tracking WHERE name = %s", (name,))
        return int(rows[0]["position"]) if rows else 0

    def fetch_all(self, statement: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        """One read. On PostgreSQL a lone statement needs no BEGIN/ROLLBACK around it (the pool's
        connections are in autocommit): that saves two round trips on every read."""
        if self.dialect == "postgres":
            assert isinstance(self.datastore, PostgresDatastore)
            with store_errors(), self.datastore.get_connection() as connection, connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        with self.transaction(commit=False) as cursor:
            cursor.execute(self.sql(statement), params)
            return list(cursor.fetchall())
