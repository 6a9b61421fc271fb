"""`/api/sessions/{id}/events`: record one event or a batch, and query a session's events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from litestar import Response, get, post
from litestar.params import Parameter

from application.errors import EventRejected
from application.queries import DEFAULT_EVENT_PAGE, MAX_OFFSET, MAX_PAGE, EventQuery, Order
from application.recording import EventsHandled
from application.validation import parse_event, parse_events
from domain.session import NewEvent as ValidEvent
from entrypoints.http import bodies, metrics
from entrypoints.http.openapi import ContractOperation, errors_documented
from entrypoints.http.providers import Caller, ExactBody, Recorder, Recording, Sessions
from entrypoints.http.schemas import (
    EVENT_TYPES,
    SESSION_STATUSES,
    BatchRecorded,
    EventBatch,
    EventsEnvelope,
    NewEvent,
    SessionEnvelope,
    answer,
    event_out,
    session_out,
)

DECODE_IN_LOOP_BYTES = 64 * 1024
"""Bodies up to this size are validated in the event loop (faster than a hop to a thread)."""

_SIDE_EFFECTS = (
    "Side effects: `conversation_started` sets the session's `external_conversation_id` from "
    "`data.conversation_id` when it has none; `session_status_changed` sets its `status` from "
    f"`data.new_status`, one of {', '.join(SESSION_STATUSES)} (any other value is stored, logged and "
    "ignored). An event whose `id` the session already recorded is recorded once."
)


@post(
    "/sessions/{session_id:int}/events",
    tags=["events"],
    status_code=200,
    summary="Record one event",
    description=f"Answers the session as updated by the event. {_SIDE_EFFECTS}",
    dto=ExactBody[NewEvent],
    return_dto=None,
    responses=errors_documented(400, 401, 404, 413, 422, 503),
    operation_class=ContractOperation,
)
async def record_event(session_id: int, recording: Recorder, data: bytes = b"") -> Response[SessionEnvelope]:
    handled = await _recorded(
        recording, session_id, lambda: [parse_event(bodies.json_object(data), session_id)], len(data)
    )
    metrics.recorded("single", submitted=1, new=handled.new_event_count)
    return answer(SessionEnvelope(session_out(handled.session)))


@post(
    "/sessions/{session_id:int}/events/batch",
    tags=["events"],
    status_code=200,
    summary="Record a batch of 1 to 1,000 events, all or nothing",
    description="`event_count` counts the events this call newly recorded (duplicates by `id` are not "
    f"counted); the session's own `event_count` is its total. {_SIDE_EFFECTS}",
    dto=ExactBody[EventBatch],
    return_dto=None,
    responses=errors_documented(400, 401, 404, 413, 422, 503),
    operation_class=ContractOperation,
)
async def record_events(session_id: int, recording: Recorder, data: bytes = b"") -> Response[BatchRecorded]:
    submitted = 0

    def parse() -> list[ValidEvent]:
        nonlocal submitted
        batch = bodies.event_batch(data)
        submitted = len(batch)
        return parse_events(batch, session_id)

    handled = await _recorded(recording, session_id, parse, len(data))
    metrics.recorded("batch", submitted=submitted, new=handled.new_event_count)
    return answer(BatchRecorded(session_out(handled.session), handled.new_event_count))


@get(
    "/sessions/{session_id:int}/events",
    tags=["events"],
    summary="Query a session's events",
    description="Ordered by `sent_at`, ties in the order the session recorded them, so that pages never "
    "repeat or skip an event; `order=desc` is the exact reverse.",
    responses=errors_documented(401, 404, 422, 503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def get_events(
    session_id: int,
    caller: Caller,
    sessions: Sessions,
    event_type: str | None = Parameter(
        default=None,
        description="Only events of this type; camelCase (`toolCalled`) is accepted too.",
        schema_extra={"enum": list(EVENT_TYPES)},
    ),
    limit: int | None = Parameter(
        default=None, ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE} (default {DEFAULT_EVENT_PAGE})"
    ),
    offset: int | None = Parameter(
        default=None,
        ge=0,
        le=MAX_OFFSET,
        description="0 or more (default 0)",
        schema_extra={"minimum": 0},  # Litestar leaves out a bound of 0
    ),
    order: str | None = Parameter(
        default=None, description="`asc` (default) or `desc`", schema_extra={"enum": [o.value for o in Order]}
    ),
) -> Response[EventsEnvelope]:
    query = EventQuery.parse(event_type, limit, offset, order)
    events = sessions.get_events(caller, session_id, query)
    return answer(EventsEnvelope([event_out(e) for e in events]))


async def _recorded(
    recording: Recording, session_id: int, parse: Callable[[], list[ValidEvent]], body_bytes: int
) -> EventsHandled:
    """Validates the body, then waits (without holding a thread) for the events to be durable.
    A large body is decoded in a worker thread, so that the event loop keeps serving. A missing
    (or foreign) session is a 404 whatever the body: it is checked before a body error is told.
    A client that goes away while its call is still queued withdraws it (nothing is recorded);
    once its group is being saved, it is recorded whole."""
    try:
        events = parse() if body_bytes <= DECODE_IN_LOOP_BYTES else await asyncio.to_thread(parse)
    except (EventRejected, bodies.MalformedBody):
        await asyncio.to_thread(recording.sessions.get_session, recording.scope, session_id)
        raise
    return await asyncio.wrap_future(recording.sessions.record(recording.scope, session_id, events))


ROUTES: list[Any] = [record_event, record_events, get_events]
