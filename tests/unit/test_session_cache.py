"""The process's cache of sessions, and the cheap copy writers decide on."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from adapters.eventstore.session_cache import SessionCache, working_copy
from domain.event_types import EventType
from domain.session import Session
from tests.factories import new_event

IMMUTABLE = (int, str, bool, float, type(None), datetime, UUID)


def a_session(number: int = 1, events: int = 0) -> Session:
    session = Session(number=number, account_id=1, user_id=2, type="t", state_json='{"a": 1}')
    session.record([new_event() for _ in range(events)])
    session.record([new_event(EventType.CONVERSATION_STARTED, {"conversation_id": "c"})])
    session.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "failed"})])
    session.collect_events()
    return session


def test_every_attribute_of_a_session_is_an_immutable_value() -> None:
    """What makes `working_copy` (a shallow copy) a full copy: add a mutable attribute to the
    session and this fails, and `working_copy` must then copy it too."""
    session = a_session(events=3)
    mutable = {name: type(value) for name, value in vars(session).items() if not isinstance(value, IMMUTABLE)}
    assert mutable == {"_pending_events": list}


def test_a_working_copy_changes_without_changing_the_original() -> None:
    original = a_session()
    copy = working_copy(original)
    copy.record([new_event(EventType.SESSION_STATUS_CHANGED, {"new_status": "complete"})])
    assert (copy.status, copy.event_count, len(copy.pending_events)) == ("complete", 3, 1)
    assert (original.status, original.event_count, original.pending_events) == ("failed", 2, [])
    assert vars(copy)["_pending_events"] is not vars(original)["_pending_events"]


def test_the_cache_keeps_the_most_recently_used_sessions_up_to_its_size() -> None:
    cache = SessionCache(size=2)
    for number in (1, 2):
        cache.put(a_session(number))
    assert cache.get(1) is not None  # 1 is now more recent than 2
    cache.put(a_session(3))
    assert (cache.get(1) is not None, cache.get(2), cache.get(3) is not None, len(cache)) == (True, None, True, 2)


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = SessionCache()
    newer, older = a_session(events=2), a_session(events=0)
    cache.put(newer)
    cache.put(older)
    assert cache.get(1) is newer
    cache.put(even_newer := a_session(events=5))
    assert cache.get(1) is even_newer


def test_an_evicted_session_is_forgotten() -> None:
    cache = SessionCache()
    cache.put(a_session())
    cache.evict(1)
    cache.evict(1)  # evicting what is not there is fine
    assert cache.get(1) is None
