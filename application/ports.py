"""The ports the use cases need; adapters implement them, tests fake them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from application.queries import EventQuery, Page, RecordedEvent, SessionStats
from application.recording import SaveOutcome, SessionChanges
from application.scope import Scope
from application.tokens import Credential, IssuedToken, TokenInfo
from domain.session import Session


class SessionStore(Protocol):
    """The event-sourced sessions. Errors: `SessionNotFound`, `StoreUnavailable` whenever the
    store cannot be reached."""

    def next_number(self) -> int:
        """Allocates a new public session id (a positive integer, never reused)."""
        ...

    def get(self, number: int) -> Session:
        """The session as stored now (read your writes, whichever process wrote). The object may
        be shared: read it, never change it."""
        ...

    def get_as_of(self, number: int, sequence: int) -> Session:
        """The session as it stood right after its `sequence`-th event (0: as created), for
        `0 <= sequence <=` its event count (`ValueError` otherwise). A read of the past: it never
        replaces the current session in any cache."""
        ...

    def for_update(self, numbers: Collection[int], *, refresh: Collection[int] = ()) -> dict[int, Session]:
        """A copy of each session to decide on, keyed by number; missing (or erased) ones are left
        out. As this process last saw it, which costs no round trip when it holds the session: a
        copy that another process has since moved past is caught when it is saved (a conflict).
        Those in `refresh` are read as stored now."""
        ...

    def recorded_event_ids(self, wanted: Mapping[int, Collection[UUID]]) -> dict[int, set[UUID]]:
        """Which of these event ids each session (by number) has already recorded (committed).
        Ask after `for_update`, so that a save racing with the question conflicts instead of
        duplicating."""
        ...

    def save_changes(self, changes: Sequence[SessionChanges]) -> dict[int, SaveOutcome]:
        """Saves every session's new events atomically in one transaction, with the ids of the
        events they record and each call's announcement (delivered once readable). A session that
        another writer saved since its copy was loaded (`CONFLICT`) or that is gone (`GONE`) is
        left out, without failing the others. New sessions (their first event pending) are
        created. The saved sessions' pending events are collected; the others' copies must not be
        used again."""
        ...

    def numbers_in_scope(self, scope: Scope, page: Page, conversation_id: str | None = None) -> Sequence[int]:
        """The scope's session numbers, most recently created first; only those linked to
        `conversation_id` if it is given."""
        ...


class SessionEraser(Protocol):
    """Erases sessions for good: their events from the log, their snapshots, and their rows in
    every other table and read model, so that they answer 404 everywhere and their data can be
    read from nowhere (ADR 0013). Errors: `StoreUnavailable`."""

    def erase(
        self,
        session_ids: Sequence[int],
        owner: Scope | None = None,
        idle_before: datetime | None = None,
        dry_run: bool = False,
    ) -> list[int]:
        """Erases, in one transaction, those of the sessions that exist, belong to `owner` (if
        given) and, if `idle_before` is given, whose last event was recorded before it (checked
        against the log itself, with appends held off); returns their ids. Once it returns, no
        process reads them or appends to them. `dry_run`: only says which it would erase."""
        ...

    def idle_sessions(self, before: datetime, after: int, limit: int) -> Sequence[int]:
        """Up to `limit` session ids above `after`, in order, whose last event (a session without
        events: its creation) was received before `before`, as far as the read model knows yet:
        candidates for `erase(..., idle_before=before)`, which checks each against the log."""
        ...

    def purge(self) -> bool:
        """Removes what erasures deleted from the store's own files, as far as the store allows
        (SQLite rewrites its file); False if that could not be finished now."""
        ...


class EventViews(Protocol):
    """The `session_events` read model, kept by a projection of the session log."""

    def events(self, session_id: int, query: EventQuery) -> Sequence[RecordedEvent]:
        """Includes every event committed before the call (read your writes, for any client);
        raises `StoreUnavailable` if the read model cannot catch up promptly."""
        ...


class StatsViews(Protocol):
    """The `session_stats` read model."""

    def stats(self, session_id: int) -> SessionStats:
        """Counts every event committed before the call (read your writes); raises
        `StoreUnavailable` if the read model cannot catch up promptly."""
        ...


class TokenStore(Protocol):
    """API tokens, kept only as hashes. A revoked token stays listed (as revoked), never reused."""

    def issue(self, scope: Scope, name: str | None = None, expires_at: datetime | None = None) -> IssuedToken:
        """Creates a token for the scope and returns it; it cannot be shown again."""
        ...

    def remembered(self, token: str) -> Credential | None:
        """What `authenticate` would give, when this process can tell without the store (a token
        it accepted a moment ago); None when only `authenticate` can tell. Raises `TokenRejected`
        for a remembered token since revoked or expired."""
        ...

    def authenticate(self, token: str) -> Credential:
        """The token's credential; raises `TokenRejected` if it is unknown, revoked or expired.
        Records the token's last use (at most once a minute per process)."""
        ...

    def scope_of(self, token: str) -> Scope | None:
        """The scope of an accepted token; None if `authenticate` would reject it."""
        ...

    def tokens(self, account_id: int | None = None) -> list[TokenInfo]:
        """Every token (or an account's), oldest first."""
        ...

    def revoke(self, token_id: int) -> tuple[TokenInfo, bool]:
        """Revokes the token in every process of the service within a second; returns it and
        whether this call revoked it (False: it already was). Raises `TokenNotFound`."""
        ...


class RateLimiter(Protocol):
    """Requests per minute per token, counted across every process of the service."""

    def admit(self, token_id: int) -> None:
        """Counts a request; raises `RateLimited` (nothing counted as done) if it is over the limit."""
        ...
