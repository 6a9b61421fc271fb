"""Maps what the use cases (and Litestar) raise to HTTP answers in the contract's shapes.

Each error body is a Struct declared once, used both to encode the answer and, in `openapi`, to
document it. Nothing is ever a 500: an unexpected error is logged and answered as a 503."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from application.errors import (
    ConcurrentUpdate,
    EventRejected,
    InvalidQuery,
    RateLimited,
    ReadModelFailed,
    SessionNotFound,
    StoreUnavailable,
)
from entrypoints.http.bodies import MalformedBody
from entrypoints.http.providers import Unauthenticated
from entrypoints.http.schemas import EVENT_TYPE_HINT, answer

logger = logging.getLogger("session_events.http")

RETRY_AFTER_SECONDS = "2"


class NotFound(msgspec.Struct):
    """A missing session and one outside the caller's scope answer alike."""

    status: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"enum": ["not_found"]}})]
    error: str


SESSION_NOT_FOUND = NotFound("not_found", "Session not found")


class Invalid(msgspec.Struct):
    """`errors` maps each bad field (or query parameter) to its messages: `can't be blank` when
    missing or null, `is invalid` when of the wrong kind. `index` is the 0-based position of the
    first invalid event of a batch. `hints` says, for some fields, what is accepted."""

    errors: dict[str, list[str]]
    index: int | msgspec.UnsetType = msgspec.UNSET
    hints: dict[str, str] | msgspec.UnsetType = msgspec.UNSET


class Problem(msgspec.Struct):
    """An error code and its explanation, as RFC 6750 answers a 401: `invalid_request` (no or
    malformed Authorization header), `invalid_token`; also 503 `service_unavailable`,
    `too_much_contention`, 429 `rate_limited` and 426 `upgrade_required`."""

    error: str
    error_description: str


class FrameworkError(msgspec.Struct):
    """Errors found before a handler runs, e.g. 413 for a body over 10 MiB."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | msgspec.UnsetType = msgspec.UNSET


def _invalid(errors: dict[str, list[str]], index: int | None = None) -> Invalid:
    """A guessed event type also gets the list of real ones, in `hints`: `errors` stays exactly as
    the contract says, since clients compare it."""
    hints = {"event_type": EVENT_TYPE_HINT} if "event_type" in errors else msgspec.UNSET
    return Invalid(errors, index=msgspec.UNSET if index is None else index, hints=hints)


def _not_found(_: Request[Any, Any, Any], __: SessionNotFound) -> Response[Any]:
    return answer(SESSION_NOT_FOUND, 404)


def _rejected(_: Request[Any, Any, Any], error: EventRejected) -> Response[Any]:
    return answer(_invalid(error.errors, error.index), 422)


def _invalid_query(_: Request[Any, Any, Any], error: InvalidQuery) -> Response[Any]:
    return answer(_invalid(error.errors), 422)


def _malformed(_: Request[Any, Any, Any], error: MalformedBody) -> Response[Any]:
    return answer(Invalid({"body": [str(error)]}), 400)


def _retry_later(error: str, description: str) -> Response[Any]:
    return answer(Problem(error, description), 503, headers={"Retry-After": RETRY_AFTER_SECONDS})


def _unavailable(request: Request[Any, Any, Any], error: StoreUnavailable) -> Response[Any]:
    logger.warning("store unavailable for %s %s: %s", request.method, request.url.path, error)
    if isinstance(error, ReadModelFailed):  # not transient: say which read model, and where it stopped
        return _retry_later("read_model_failed", f"{error}; see session-events projections status")
    return _retry_later("service_unavailable", "the store is unavailable; retry shortly")


def _contended(request: Request[Any, Any, Any], error: ConcurrentUpdate) -> Response[Any]:
    logger.warning("gave up after repeated write conflicts on %s: %s", request.url.path, error)
    return _retry_later("too_much_contention", "too many concurrent writers; retry shortly")


def _unauthenticated(_: Request[Any, Any, Any], error: Unauthenticated) -> Response[Any]:
    # RFC 6750: no error code when the request carried no credentials at all.
    challenge = "Bearer" if error.error == "invalid_request" else f'Bearer error="{error.error}"'
    return answer(Problem(error.error, error.description), 401, headers={"WWW-Authenticate": challenge})


def _rate_limited(_: Request[Any, Any, Any], error: RateLimited) -> Response[Any]:
    return answer(Problem("rate_limited", str(error)), 429, headers={"Retry-After": str(error.retry_after)})


def _bad_parameter(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    """Litestar rejects a query parameter of the wrong type or range before the handler runs;
    answer in the contract's shape, naming the parameter."""
    errors: dict[str, list[str]] = {}
    for problem in error.extra if isinstance(error.extra, list) else []:
        if isinstance(problem, dict):
            errors.setdefault(str(problem.get("key") or "request"), []).append(str(problem.get("message")))
    return answer(_invalid(errors or {"request": [str(error.detail)]}), 422)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    """Litestar's own errors (bad path or query parameter, body too large) keep their status;
    its internal errors are reported like any unexpected one (a 503, never a 500)."""
    if error.status_code >= 500:
        return _unexpected(request, error)
    if error.status_code == 404 and request.url.path.startswith("/api/sessions/"):
        return _not_found(request, SessionNotFound(0))  # e.g. /api/sessions/abc: no such session
    body = FrameworkError(error.status_code, error.detail, error.extra or msgspec.UNSET)
    return answer(body, error.status_code, headers=error.headers)


def _unexpected(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return _retry_later("service_unavailable", "unexpected error; retry shortly")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    SessionNotFound: _not_found,
    EventRejected: _rejected,
    InvalidQuery: _invalid_query,
    MalformedBody: _malformed,
    StoreUnavailable: _unavailable,
    ConcurrentUpdate: _contended,
    Unauthenticated: _unauthenticated,
    RateLimited: _rate_limited,
    ValidationException: _bad_parameter,
    HTTPException: _http_error,
    Exception: _unexpected,
}
