"""Notification ids and resume cursors (`Last-Event-ID`), and who may see a notification."""

from __future__ import annotations

import pytest

from application.notifications import SESSION_EVENTS, SESSION_UPDATED, Cursor, Notification
from application.scope import Scope


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", Cursor(0, 0)),
        ("42", Cursor(42, 0)),
        ("42.1", Cursor(42, 1)),
        (" 42.1 ", Cursor(42, 1)),
        ("42.", Cursor(42, 0)),
        ("42.2", Cursor(42, 2)),
    ],
)
def test_a_last_event_id_parses_to_a_cursor(text: str, expected: Cursor) -> None:
    assert Cursor.parse(text) == expected


@pytest.mark.parametrize("text", [None, "", "x", "4x", "42.x", "-1", "42.-1", "1.2.3", ".1"])
def test_anything_unparseable_means_no_cursor(text: str | None) -> None:
    assert Cursor.parse(text) is None


def test_cursors_order_by_position_then_rank_and_a_bare_position_comes_after_its_kinds() -> None:
    assert Cursor(5, 1) < Cursor(6, 0)
    assert Cursor(5, 0) < Cursor(5, 1) < Cursor(5)
    assert Cursor(5) == Cursor(5, 2)


def notification(position: int, kind: str, account_id: int = 1, user_id: int = 2) -> Notification:
    return Notification(position, kind, session_id=9, account_id=account_id, user_id=user_id)


def test_ids_and_cursors_of_each_kind_round_trip() -> None:
    events, updated = notification(42, SESSION_EVENTS), notification(42, SESSION_UPDATED)
    assert (events.event_id, events.cursor) == ("42", Cursor(42, 0))
    assert (updated.event_id, updated.cursor) == ("42.1", Cursor(42, 1))
    assert Cursor.parse(events.event_id) == events.cursor and Cursor.parse(updated.event_id) == updated.cursor


def test_only_the_same_account_and_user_see_a_notification() -> None:
    sent = notification(1, SESSION_EVENTS, account_id=1, user_id=2)
    assert sent.visible_to(Scope(1, 2))
    assert not sent.visible_to(Scope(1, 3))
    assert not sent.visible_to(Scope(2, 2))
    assert not sent.visible_to(Scope(2, 1))
