"""The Litestar application: thin handlers that decode, call a use case, encode."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from litestar import Litestar, MediaType, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.params import Parameter

from application.errors import ConcurrentUpdate, EventRejected, InvalidQuery, SessionNotFound, StoreUnavailable
from application.queries import MAX_OFFSET, MAX_PAGE, EventQuery, Page
from application.scope import Scope
from application.services import SessionService
from application.validation import parse_session_fields
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.http import bodies
from entrypoints.http.auth import Unauthenticated, provide_scope, provide_service
from entrypoints.http.log_redaction import redact_tokens_in_server_logs
from entrypoints.http.schemas import (
    BatchRecorded,
    EventsEnvelope,
    SessionEnvelope,
    SessionsEnvelope,
    encode,
    event_wire,
    session_wire,
)
from entrypoints.http.stream import notifications_socket, provide_notifier, stream

logger = logging.getLogger("session_events.http")
T = TypeVar("T")

MAX_BODY_BYTES = 10 * 1024 * 1024

RETRY_AFTER_SECONDS = "2"


def _json(payload: dict[str, Any], status_code: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(encode(payload), status_code=status_code, media_type=MediaType.JSON, headers=headers)


async def provide_raw_body(request: Request[Any, Any, Any]) -> bytes:
    """Bodies are decoded by `bodies`, not by Litestar, to report errors in the contract's terms."""
    return await request.body()


def provide_sessions(state: State) -> SessionService:
    return provide_service(state).sessions


@post("/sessions", status_code=201, summary="Create a session", sync_to_thread=True)
def create_session(raw_body: bytes, caller: Scope, sessions: SessionService) -> Response[SessionEnvelope]:
    """Body `{}` or any of `type`, `agent`, `environment` (strings) and `state` (object)."""
    fields = bodies.json_object(raw_body)
    session = sessions.create_session(caller, parse_session_fields(fields))
    return _json({"data": session_wire(session)}, status_code=201)


@get("/sessions", summary="List the caller's sessions, most recent first", sync_to_thread=True)
def list_sessions(
    caller: Scope,
    sessions: SessionService,
    limit: int | None = Parameter(default=None, ge=1, le=MAX_PAGE),
    offset: int | None = Parameter(default=None, ge=0, le=MAX_OFFSET),
    conversation_id: str | None = Parameter(
        default=None, max_length=1000, description="only sessions whose external_conversation_id is this"
    ),
) -> Response[SessionsEnvelope]:
    found = sessions.list_sessions(caller, Page.parse(limit, offset), conversation_id or None)
    return _json({"data": [session_wire(s) for s in found]})


@get("/sessions/{session_id:int}", summary="Get a session", sync_to_thread=True)
def get_session(session_id: int, caller: Scope, sessions: SessionService) -> Response[SessionEnvelope]:
    return _json({"data": session_wire(sessions.get_session(caller, session_id))})


@post("/sessions/{session_id:int}/events", status_code=200, summary="Record one event", sync_to_thread=True)
def record_event(
    session_id: int, raw_body: bytes, caller: Scope, sessions: SessionService
) -> Response[SessionEnvelope]:
    """Body: one event `{event_type, sent_at, data, metadata?, id?, session_id?}`."""
    handled = sessions.handle_event(
        caller, session_id, _decoded_body(bodies.json_object, raw_body, caller, session_id, sessions)
    )
    return _json({"data": session_wire(handled.session)})


@post(
    "/sessions/{session_id:int}/events/batch",
    status_code=200,
    summary="Record a batch of 1 to 1,000 events, all or nothing",
    sync_to_thread=True,
)
def record_events(session_id: int, raw_body: bytes, caller: Scope, sessions: SessionService) -> Response[BatchRecorded]:
    """Body `{"events": [event, ...]}`; `event_count` counts the events newly recorded."""
    batch = _decoded_body(bodies.event_batch, raw_body, caller, session_id, sessions)
    handled = sessions.handle_events(caller, session_id, batch)
    return _json({"data": session_wire(handled.session), "event_count": handled.new_event_count})


@get("/sessions/{session_id:int}/events", summary="Query a session's events", sync_to_thread=True)
def get_events(
    session_id: int,
    caller: Scope,
    sessions: SessionService,
    event_type: str | None = None,
    limit: int | None = Parameter(default=None, ge=1, le=MAX_PAGE),
    offset: int | None = Parameter(default=None, ge=0, le=MAX_OFFSET),
    order: str | None = Parameter(default=None, description="asc (default) or desc"),
) -> Response[EventsEnvelope]:
    query = EventQuery.parse(event_type, limit, offset, order)
    events = sessions.get_events(caller, session_id, query)
    return _json({"data": [event_wire(e) for e in events]})


@get("/health", summary="Liveness and readiness", sync_to_thread=True)
def health(state: State) -> Response[dict[str, str]]:
    service = provide_service(state)
    service.check_ready()  # raises StoreUnavailable (503) if the store cannot be reached
    return _json({"status": "ok", "store": service.store_kind})


def _decoded_body(
    decode: Callable[[bytes], T], raw_body: bytes, caller: Scope, session_id: int, sessions: SessionService
) -> T:
    """A missing (or foreign) session is a 404 whatever the body: check it before reporting a body error."""
    try:
        return decode(raw_body)
    except (EventRejected, bodies.MalformedBody):
        sessions.get_session(caller, session_id)
        raise


def _not_found(_: Request[Any, Any, Any], __: SessionNotFound) -> Response[Any]:
    return _json({"status": "not_found", "error": "Session not found"}, status_code=404)


def _rejected(_: Request[Any, Any, Any], error: EventRejected) -> Response[Any]:
    payload: dict[str, Any] = {"errors": error.errors}
    if error.index is not None:
        payload["index"] = error.index
    return _json(payload, status_code=422)


def _invalid_query(_: Request[Any, Any, Any], error: InvalidQuery) -> Response[Any]:
    return _json({"errors": error.errors}, status_code=422)


def _malformed(_: Request[Any, Any, Any], error: bodies.MalformedBody) -> Response[Any]:
    return _json({"errors": {"body": [str(error)]}}, status_code=400)


def _retry_later(error: str, description: str) -> Response[Any]:
    return _json(
        {"error": error, "error_description": description},
        status_code=503,
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def _unavailable(request: Request[Any, Any, Any], error: StoreUnavailable) -> Response[Any]:
    logger.warning("store unavailable for %s %s: %s", request.method, request.url.path, error)
    return _retry_later("service_unavailable", "the store is unavailable; retry shortly")


def _contended(request: Request[Any, Any, Any], error: ConcurrentUpdate) -> Response[Any]:
    logger.warning("gave up after repeated write conflicts on %s: %s", request.url.path, error)
    return _retry_later("too_much_contention", "too many concurrent writers; retry shortly")


def _unauthenticated(_: Request[Any, Any, Any], error: Unauthenticated) -> Response[Any]:
    return _json(
        {"error": error.error, "error_description": error.description},
        status_code=401,
        # RFC 6750: no error code when the request carried no credentials at all.
        headers={"WWW-Authenticate": "Bearer" if error.error == "invalid_request" else f'Bearer error="{error.error}"'},
    )


def _bad_parameter(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """Litestar rejects a query parameter of the wrong type or range before the handler runs;
    answer in the contract's shape, naming the parameter."""
    errors: dict[str, list[str]] = {}
    for problem in error.extra if isinstance(error.extra, list) else []:
        if isinstance(problem, dict):
            errors.setdefault(str(problem.get("key") or "request"), []).append(str(problem.get("message")))
    return _json({"errors": errors or {"request": [str(error.detail)]}}, status_code=422)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Litestar's own errors (bad path or query parameter, body too large) keep their status;
    its internal errors are reported like any unexpected one (a 503, never a 500)."""
    if error.status_code >= 500:
        return _unexpected(request, error)
    if error.status_code == 404 and request.url.path.startswith("/api/sessions/"):
        return _not_found(request, SessionNotFound(0))  # e.g. /api/sessions/abc: no such session
    payload: dict[str, Any] = {"status_code": error.status_code, "detail": error.detail}
    if error.extra:
        payload["extra"] = error.extra
    return _json(payload, status_code=error.status_code, headers=error.headers)


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return _retry_later("service_unavailable", "unexpected error; retry shortly")


def _close_streams_on_signal(service: Service) -> None:
    """The server waits for open responses before shutting down, and live streams never end by
    themselves: on SIGTERM/SIGINT end them first (cleanly), then let the server's handler run."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def close_then_chain(received: int, frame: Any, previous: Any = previous) -> None:
            service.close_streams()
            if callable(previous):
                previous(received, frame)

        signal.signal(signum, close_then_chain)


def create_app(service: Service | None = None) -> Litestar:
    """`service` lets tests inject a wired service; by default it is built from the environment
    when the app starts, and closed when it stops."""

    def start(app: Litestar) -> None:
        app.state.service = service if service is not None else bootstrap()
        # Blocking handlers run in the loop's default executor, min(32, cores + 4) threads unless
        # told otherwise: 6 here, too few for requests that wait on locks or the read model.
        # One thread per pooled connection.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(app.state.service.settings.request_threads, thread_name_prefix="session-events")
        )
        _close_streams_on_signal(app.state.service)
        redact_tokens_in_server_logs()

    def stop(app: Litestar) -> None:
        if service is None and getattr(app.state, "service", None) is not None:
            app.state.service.close()

    api = Router(
        path="/api",
        route_handlers=[
            create_session,
            list_sessions,
            get_session,
            record_event,
            record_events,
            get_events,
            stream,
            notifications_socket,
        ],
        dependencies={
            "caller": Provide(provide_scope, sync_to_thread=True),
            "sessions": Provide(provide_sessions, sync_to_thread=False),
            "raw_body": Provide(provide_raw_body),
            "notifier": Provide(provide_notifier, sync_to_thread=False),
        },
        request_max_body_size=MAX_BODY_BYTES,
    )
    return Litestar(
        route_handlers=[api, health],
        on_startup=[start],
        on_shutdown=[stop],
        exception_handlers={
            SessionNotFound: _not_found,
            EventRejected: _rejected,
            InvalidQuery: _invalid_query,
            bodies.MalformedBody: _malformed,
            StoreUnavailable: _unavailable,
            ConcurrentUpdate: _contended,
            Unauthenticated: _unauthenticated,
            ValidationException: _bad_parameter,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="session-events",
            version="0.1.0",
            description="Records the activity stream of IDE coding sessions. See README.md.",
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
        ),
    )
