"""The erasure use cases against a fake of their port: who may erase, and how a prune walks the
sessions (a batch at a time, the store's own check deciding, one purge at the end)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from application.erasure import MAX_PRUNE_BATCH, SessionErasure
from application.errors import SessionNotFound
from application.scope import Scope

OWNER = Scope(account_id=1, user_id=10)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


class FakeEraser:
    def __init__(self, owners: dict[int, Scope], idle: set[int] | None = None, purged: bool = True) -> None:
        self.owners = owners
        self.idle = idle if idle is not None else set(owners)
        """Idle by the log's word (what `erase(..., idle_before=...)` checks)."""
        self.candidates_asked: list[tuple[datetime, int, int]] = []
        self.erase_calls: list[tuple[list[int], Scope | None, datetime | None, bool]] = []
        self.purges = 0
        self.purged = purged

    def erase(
        self,
        session_ids: Sequence[int],
        owner: Scope | None = None,
        idle_before: datetime | None = None,
        dry_run: bool = False,
    ) -> list[int]:
        self.erase_calls.append((list(session_ids), owner, idle_before, dry_run))
        chosen = [
            n
            for n in session_ids
            if n in self.owners
            and (owner is None or self.owners[n] == owner)
            and (idle_before is None or n in self.idle)
        ]
        if not dry_run:
            for n in chosen:
                del self.owners[n]
        return chosen

    def idle_sessions(self, before: datetime, after: int, limit: int) -> Sequence[int]:
        self.candidates_asked.append((before, after, limit))
        return sorted(n for n in self.owners if n > after)[:limit]

    def purge(self) -> bool:
        self.purges += 1
        return self.purged


def test_an_owner_erases_a_session_and_the_store_is_purged() -> None:
    eraser = FakeEraser({7: OWNER})
    SessionErasure(eraser).erase_session(OWNER, 7)
    assert eraser.erase_calls == [([7], OWNER, None, False)]
    assert (eraser.owners, eraser.purges) == ({}, 1)


@pytest.mark.parametrize("who", [Scope(1, 11), Scope(2, 10)])
def test_a_foreign_or_missing_session_is_not_found_and_nothing_is_purged(who: Scope) -> None:
    eraser = FakeEraser({7: OWNER})
    for session_id in (7, 8):
        with pytest.raises(SessionNotFound) as not_found:
            SessionErasure(eraser).erase_session(who if session_id == 7 else OWNER, session_id)
        assert not_found.value.session_id == session_id
    assert (eraser.owners, eraser.purges) == ({7: OWNER}, 0)


def test_a_purge_that_cannot_finish_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    eraser = FakeEraser({7: OWNER}, purged=False)
    with caplog.at_level(logging.WARNING, logger="session_events.erasure"):
        SessionErasure(eraser).erase_session(OWNER, 7)
    assert "could not finish purging" in caplog.text


def test_a_prune_walks_every_session_a_batch_at_a_time_and_purges_once() -> None:
    eraser = FakeEraser({n: OWNER for n in range(1, 8)}, idle={1, 2, 4, 5, 7})
    erased = SessionErasure(eraser, clock=lambda: NOW).prune(timedelta(days=30), batch_size=3)
    assert erased == 5
    before = NOW - timedelta(days=30)
    assert [call[0] for call in eraser.erase_calls] == [[1, 2, 3], [4, 5, 6], [7]]
    assert {(call[1], call[2], call[3]) for call in eraser.erase_calls} == {(None, before, False)}
    assert [(asked, after) for asked, after, _ in eraser.candidates_asked] == [
        (before, 0),
        (before, 3),
        (before, 6),
        (before, 7),
    ]
    assert (sorted(eraser.owners), eraser.purges) == ([3, 6], 1)


def test_a_dry_run_counts_what_a_prune_would_erase_and_changes_nothing() -> None:
    eraser = FakeEraser({n: OWNER for n in range(1, 5)}, idle={2, 3})
    assert SessionErasure(eraser, clock=lambda: NOW).prune(timedelta(days=1), dry_run=True) == 2
    assert (sorted(eraser.owners), eraser.purges) == ([1, 2, 3, 4], 0)
    assert {call[3] for call in eraser.erase_calls} == {True}


def test_a_prune_that_erases_nothing_purges_nothing() -> None:
    eraser = FakeEraser({1: OWNER}, idle=set())
    assert SessionErasure(eraser, clock=lambda: NOW).prune(timedelta(days=1)) == 0
    assert eraser.purges == 0


@pytest.mark.parametrize("batch_size", [0, MAX_PRUNE_BATCH + 1])
def test_a_prune_batch_has_bounds(batch_size: int) -> None:
    with pytest.raises(ValueError, match="prune batch"):
        SessionErasure(FakeEraser({})).prune(timedelta(days=1), batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [1, MAX_PRUNE_BATCH])
def test_a_prune_batch_may_be_as_small_or_as_large_as_its_bounds(batch_size: int) -> None:
    eraser = FakeEraser({n: OWNER for n in range(1, 4)}, idle={1, 3})
    assert SessionErasure(eraser, clock=lambda: NOW).prune(timedelta(days=1), batch_size=batch_size) == 2
    assert eraser.candidates_asked[0][2] == batch_size
