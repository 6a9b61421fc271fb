"""`Database`: our own tables, in the event log's database and on its connection pool (one pool
per process, one place to configure it). Adapters say *what* they want of it; each dialect
(`postgres.Postgres`, `sqlite.SQLite`) says *how*, so no adapter asks which store it is on.

Our SQL is written once, in the DB-API `format` paramstyle (`%s`). PostgreSQL's driver speaks
it; SQLite's speaks only `qmark`, so `statement()` translates a statement once, when an adapter
prepares it, never per call."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent

from application.errors import StoreUnavailable

UNREACHABLE = (InterfaceError, OperationalError)


@contextmanager
def store_errors() -> Iterator[None]:
    """Turns 'cannot reach the store' into the application's `StoreUnavailable`."""
    try:
        yield
    except UNREACHABLE as error:
        raise StoreUnavailable(str(error)) from error


class Database(ABC):
    name: str
    """`postgres` or `sqlite`."""

    datastore: Any
    """The event store library's datastore (its pool): our tables share its connections."""

    # --- connections -----------------------------------------------------------------------
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        """A cursor in a transaction (rows as dicts), committed on success if `commit`."""
        with store_errors(), self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def fetch_all(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """One read, in a transaction of its own."""
        with self.transaction(commit=False) as cursor:
            cursor.execute(self.statement(statement), params)
            return list(cursor.fetchall())

    def write_one(self, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """One statement that writes, committed by itself; its rows (`RETURNING`)."""
        with self.transaction(commit=True) as cursor:
            cursor.execute(self.statement(statement), params)
            return list(cursor.fetchall())  # [] when nothing is returned

    @abstractmethod
    def named_lock(self, name: str, *, wait: bool) -> AbstractContextManager[bool]:
        """A lock shared by every process of the deployment, held for the `with` block; yields
        whether it was taken (always, if `wait`)."""

    def schema_lock(self) -> AbstractContextManager[bool]:
        """Held while the schema is migrated: processes starting together take turns."""
        return self.named_lock("schema", wait=True)

    def statement(self, sql: str) -> str:
        """`sql` as this dialect's driver wants it (see the module docstring)."""
        return sql

    # --- values ----------------------------------------------------------------------------
    @abstractmethod
    def time(self, moment: datetime) -> Any:
        """A time as this dialect stores it."""

    @abstractmethod
    def read_time(self, value: Any) -> datetime: ...

    @abstractmethod
    def uuid(self, value: UUID) -> Any: ...

    @abstractmethod
    def read_uuid(self, value: Any) -> UUID: ...

    def pool_usage(self) -> dict[str, int] | None:
        """Connections `in_use` and `idle` in this process's pool and requests `waiting` for one;
        None for a store without a pool."""
        return None

    def now(self) -> Any:
        return self.time(datetime.now(UTC))

    @abstractmethod
    def json_text(self, column: str) -> str:
        """A select-list expression giving a JSON column's text exactly as it was stored."""

    # --- what differs between the dialects ---------------------------------------------------
    @abstractmethod
    def has_table(self, name: str) -> bool: ...

    @abstractmethod
    def allocate_session_number(self) -> int:
        """A new positive session number, never handed out before."""

    @abstractmethod
    def select_recorded_event_ids(self, session_number: int, event_ids: Collection[UUID]) -> set[UUID]:
        """Which of `event_ids` the session has recorded (the `session_event_ids` table)."""

    @abstractmethod
    def recorded_event_ids_of(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        """For several sessions at once (one read): which of the ids each has recorded."""

    @abstractmethod
    def session_tail(self, number: int, session_uuid: UUID, after_version: int) -> list[StoredEvent] | None:
        """The session's stored events after `after_version`, in order, in one read that also
        confirms the session still exists (`session_directory`): None if it does not."""

    @abstractmethod
    def session_numbers_of(self, session_uuids: Collection[UUID]) -> dict[UUID, int]:
        """Public numbers of these aggregates (the `session_directory` table)."""

    @abstractmethod
    def snapshot_reads(self, cursor: Any, tables: Sequence[str] = ()) -> None:
        """Makes the rest of the cursor's transaction read from one snapshot, taken once `tables`
        are locked for reading: a rebuild that swaps a table in commits either wholly before
        that snapshot or after the transaction."""

    @abstractmethod
    def tables_named_like(self, prefix: str) -> list[str]:
        """Tables whose names start with `prefix` (leftovers of interrupted rebuilds)."""

    @abstractmethod
    def announce(self, cursor: Any, channel: str, payload: str) -> None:
        """Tells every process listening on `channel`, when the transaction commits."""

    @abstractmethod
    def count_log_events_after(self, position: int) -> int:
        """How many events the session log holds after `position`."""

    @abstractmethod
    def sessions_present(self, cursor: Any, numbers: Collection[int]) -> set[int]:
        """Which of these session numbers still have their `session_directory` row (the others
        were erased), read with `cursor`."""

    # --- erasure (ADR 0013) ------------------------------------------------------------------
    @abstractmethod
    def select_for_update(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of a SELECT, which no other transaction can change until this one ends."""

    @abstractmethod
    def lock_log(self, cursor: Any) -> None:
        """Until the transaction ends, nobody else appends to the log: appends wait for it."""

    @abstractmethod
    def log_id(self, value: UUID) -> Any:
        """An aggregate id as the event store's own tables hold it."""

    @abstractmethod
    def log_head(self, cursor: Any) -> int:
        """The position of the log's last event, read with `cursor` (0 for an empty log)."""

    @abstractmethod
    def append_to_log(self, cursor: Any, stored: StoredEvent, after: int) -> int:
        """Appends one stored event to the log, at a position above `after` and every position
        the log has held (readers follow the log by position: one must never be handed out
        twice), and tells the log's listeners; returns its position. Call it under `lock_log`."""

    @abstractmethod
    def purge_deleted(self) -> bool:
        """Makes what committed transactions deleted unreadable in the store's own files, as far
        as this store allows; False if that could not be finished now (ADR 0013)."""

    @abstractmethod
    def log_rows_after(self, position: int, limit: int) -> list[tuple[int, Any, int, str, bytes]]:
        """Up to `limit` rows of the session log after `position`, in log order, as plain tuples
        (position, aggregate id as the driver gives it, aggregate version, topic, state): what a
        projection reads, a batch at a time, with nothing built per row that it does not need."""

    @abstractmethod
    def insert_rows(self, cursor: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Inserts `rows` (values in `columns` order, as this dialect stores them) into `table`
        in bulk, with `cursor`, in its transaction: how a projection writes a batch's new rows."""
