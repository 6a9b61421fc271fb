"""`/api/sessions`: create, list, get and erase the caller's sessions."""

from __future__ import annotations

from typing import Any

from litestar import Response, delete, get, post
from litestar.params import Parameter

from application.queries import DEFAULT_SESSION_PAGE, MAX_OFFSET, MAX_PAGE, Page
from application.validation import parse_session_fields
from entrypoints.http import bodies, metrics
from entrypoints.http.openapi import ContractOperation, OptionalBodyOperation, errors_documented
from entrypoints.http.providers import Caller, Erasure, ExactBody, Sessions
from entrypoints.http.schemas import NewSession, SessionEnvelope, SessionsEnvelope, answer, session_out


@post(
    "/sessions",
    tags=["sessions"],
    status_code=201,
    summary="Create a session",
    description="Body `{}` (or none) or any of `type`, `agent`, `environment` (strings) and `state` (object).",
    dto=ExactBody[NewSession],
    return_dto=None,
    responses=errors_documented(400, 401, 413, 422, 503),
    operation_class=OptionalBodyOperation,
    sync_to_thread=True,
)
def create_session(caller: Caller, sessions: Sessions, data: bytes = b"") -> Response[SessionEnvelope]:
    fields = bodies.json_object(data)
    session = sessions.create_session(caller, parse_session_fields(fields))
    return answer(SessionEnvelope(session_out(session)), status_code=201)


@get(
    "/sessions",
    tags=["sessions"],
    summary="List the caller's sessions, most recent first",
    responses=errors_documented(401, 422, 503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def list_sessions(
    caller: Caller,
    sessions: Sessions,
    limit: int | None = Parameter(
        default=None, ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE} (default {DEFAULT_SESSION_PAGE})"
    ),
    offset: int | None = Parameter(
        default=None,
        ge=0,
        le=MAX_OFFSET,
        description="0 or more (default 0)",
        schema_extra={"minimum": 0},  # Litestar leaves out a bound of 0
    ),
    conversation_id: str | None = Parameter(
        default=None, max_length=1000, description="Only the sessions whose `external_conversation_id` is this."
    ),
) -> Response[SessionsEnvelope]:
    found = sessions.list_sessions(caller, Page.parse(limit, offset), conversation_id or None)
    return answer(SessionsEnvelope([session_out(s) for s in found]))


@get(
    "/sessions/{session_id:int}",
    tags=["sessions"],
    summary="Get a session, now or as it stood after one of its events",
    description="With `sequence=N`, the session as it stood right after its N-th event (`0`: as created), "
    "with `event_count` N and `updated_at` the time of that event; N beyond the session's events, or negative, "
    "is a 422.",
    responses=errors_documented(401, 404, 422, 503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def get_session(
    session_id: int,
    caller: Caller,
    sessions: Sessions,
    sequence: int | None = Parameter(
        default=None,
        description="0 to the session's `event_count` (default: the session as it is now)",
        schema_extra={"minimum": 0},  # checked by the use case, which names the session's event count
    ),
) -> Response[SessionEnvelope]:
    if sequence is None:
        session = sessions.get_session(caller, session_id)
    else:
        session = sessions.get_session_as_of(caller, session_id, sequence)
    return answer(SessionEnvelope(session_out(session)))


@delete(
    "/sessions/{session_id:int}",
    tags=["sessions"],
    summary="Erase a session and all its events, for good",
    description="The session, its events, its statistics and its notifications are deleted from the event log "
    "and from every read model, export and stream replay: afterwards it answers 404 on every route, in every "
    "process, and nothing it held can be read. Appends racing with the erasure are either erased with it or "
    "refused (404). Streams of the session's scope get a `session_erased` event `{session_id}`. An erased "
    "session cannot be restored, and its id is never reused.",
    responses=errors_documented(401, 404, 503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def erase_session(session_id: int, caller: Caller, erasure: Erasure) -> None:
    erasure.erase_session(caller, session_id)
    metrics.erased()


ROUTES: list[Any] = [create_session, list_sessions, get_session, erase_session]
