"""The log's write ceiling: saves made back to back from one thread, with every group decided
before the clock starts (no HTTP, no validation, no deciding), on either store.

Every save takes the log's lock (PostgreSQL: its EXCLUSIVE table lock, which keeps notification
ids in commit order; SQLite: its write lock), so one save runs at a time, whichever process makes
it: no service on that log can ingest faster. Case 1 of `python -m bench` reports it beside its
check; `bench/bench_write_ceiling.py` measures it in more detail on PostgreSQL."""

from __future__ import annotations

import json
import time
from typing import Any

from adapters.eventstore.recorders import SessionLogPostgresRecorder, SessionLogSQLiteRecorder
from adapters.eventstore.session_cache import working_copy
from application.notifications import Announcement
from application.recording import CallAnnounced, SaveOutcome, SessionChanges
from application.scope import Scope
from application.validation import parse_events
from bench.events import Event
from domain.session import Session
from entrypoints.bootstrap import Service

SCOPE = Scope(1, 1)
SESSIONS = 4


def raw(event: Event) -> dict[str, bytes]:
    return {name: json.dumps(value).encode() for name, value in event.as_json().items()}


def save_rates(service: Service, events: list[Event], group: int, *, inline: bool) -> tuple[float, float]:
    """Events per second of saves back to back (every group is decided before the clock starts),
    and of their transactions alone (the recorder's `insert_group`: what holds the lock, from
    BEGIN to COMMIT, with the parameters' encoding)."""
    service.log.projects_session_events = inline
    store = service.store
    numbers = [service.sessions.create_session(SCOPE).number for _ in range(SESSIONS)]
    per_session = group // SESSIONS
    groups: list[list[SessionChanges]] = []
    sessions: dict[int, Session] = store.for_update(numbers)
    for start in range(0, len(events), group):
        changes = []
        for k, number in enumerate(numbers):
            share = events[start + k * per_session : start + (k + 1) * per_session]
            if not share:
                continue
            session = sessions[number]
            recorded = session.record(parse_events([raw(e) for e in share], number))
            announcement = Announcement(number, SCOPE.account_id, SCOPE.user_id, recorded.new_event_count)
            changes.append(SessionChanges(session, [CallAnnounced(announcement, session.version)]))
        groups.append(changes)
        # The next group goes on from these sessions, on copies: this group's events stay pending here.
        sessions = {number: working_copy(session) for number, session in sessions.items()}
    recorder = service.log.recorder
    if not isinstance(recorder, SessionLogPostgresRecorder | SessionLogSQLiteRecorder):
        raise TypeError(f"no group write in a {type(recorder).__name__}")
    insert_group = recorder.insert_group
    in_transactions = 0.0

    def timed_insert_group(*args: Any, **kwargs: Any) -> Any:
        nonlocal in_transactions
        began = time.perf_counter()
        try:
            return insert_group(*args, **kwargs)
        finally:
            in_transactions += time.perf_counter() - began

    recorder.insert_group = timed_insert_group  # type: ignore[method-assign]
    began = time.perf_counter()
    try:
        for changes in groups:
            outcomes = store.save_changes(changes)
            if any(outcome is not SaveOutcome.SAVED for outcome in outcomes.values()):
                raise AssertionError(f"a save was refused: {outcomes}")
    finally:
        del recorder.insert_group
    seconds = time.perf_counter() - began
    recorded_now = sum(store.get(number).event_count for number in numbers)
    if recorded_now != len(events):
        raise AssertionError(f"{recorded_now} events recorded, {len(events)} decided")
    return len(events) / seconds, len(events) / in_transactions
