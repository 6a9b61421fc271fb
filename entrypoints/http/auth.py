"""Bearer-token authentication: every /api request resolves to a `Scope`."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State

from application.scope import Scope
from entrypoints.bootstrap import Service


class Unauthenticated(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def provide_service(state: State) -> Service:
    service: Service = state.service
    return service


def provide_scope(request: Request, state: State) -> Scope:
    """Runs in a worker thread (`sync_to_thread`): the token lookup is a database read."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("invalid_request", "missing Authorization: Bearer <token> header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("invalid_request", "malformed Authorization header; expected Bearer <token>")
    scope = provide_service(state).tokens.scope_of(token)
    if scope is None:
        raise Unauthenticated("invalid_token", "unknown token")
    return scope
