"""Everything handlers are given, in one place: the Litestar `Provide` functions, and the
request body as its exact bytes (`ExactBody`).

Handlers see the composition root's `Service` only through what is provided here: the use cases,
the caller's scope, the token store and the notifier port; `/health` asks the service itself."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.dto import AbstractDTO
from litestar.dto.data_structures import DTOFieldDefinition
from litestar.params import SkipValidation
from litestar.typing import FieldDefinition

from application.erasure import SessionErasure
from application.notifications import Notifier
from application.ports import RateLimiter, TokenStore
from application.scope import Scope
from application.services import SessionService
from application.tokens import Credential, TokenRejected
from entrypoints.bootstrap import Service


class Unauthenticated(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def provide_service(state: State) -> Service:
    service: Service = state.service
    return service


def provide_sessions(state: State) -> SessionService:
    return provide_service(state).sessions


def provide_erasure(state: State) -> SessionErasure:
    return provide_service(state).erasure


def provide_tokens(state: State) -> TokenStore:
    return provide_service(state).tokens


def provide_notifier(state: State) -> Notifier:
    return provide_service(state).notifier


def provide_keepalive(state: State) -> float:
    return provide_service(state).keepalive_seconds


def provide_limiter(state: State) -> RateLimiter | None:
    return provide_service(state).limiter


def admit(tokens: TokenStore, limiter: RateLimiter | None, token: str) -> Credential:
    """The token's credential, once the token is accepted and its request counted against the
    rate limit. Raises `TokenRejected` (unknown, revoked, expired) or `RateLimited`: both before
    the handler runs, so a refused call stores nothing."""
    if not token:
        raise TokenRejected("missing token")
    credential = tokens.authenticate(token)
    if limiter is not None:
        limiter.admit(credential.token_id)
    return credential


async def provide_credential(request: Request[Any, Any, Any], state: State) -> Credential:
    """The caller's credential from its `Authorization: Bearer <token>` header. A token this
    process accepted a moment ago is checked here, in the event loop; the store is asked (the
    token lookup, once a minute per token, and the rate limit's counter) from a worker thread."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("invalid_request", "missing Authorization: Bearer <token> header")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("invalid_request", "malformed Authorization header; expected Bearer <token>")
    tokens, limiter = provide_tokens(state), provide_limiter(state)
    try:
        credential = tokens.remembered(token)
        if credential is not None and limiter is None:
            return credential
        return await asyncio.to_thread(admit, tokens, limiter, token)
    except TokenRejected as rejected:
        raise Unauthenticated("invalid_token", str(rejected)) from None


def provide_scope(credential: NamedDependency[Credential]) -> Scope:
    """The caller's scope: whose sessions it may see."""
    return credential.scope


@dataclass(frozen=True)
class Recording:
    """What a recording handler is given: the caller's scope and the use cases, as one
    dependency. Litestar resolves independent dependencies of one handler concurrently, spawning
    a task each; one chain (credential, caller, this) costs none, which counts on the hottest
    route."""

    scope: Scope
    sessions: SessionService


def provide_recording(caller: NamedDependency[Scope], state: State) -> Recording:
    return Recording(caller, provide_sessions(state))


Tokens = SkipValidation[TokenStore]
Limiter = SkipValidation[RateLimiter | None]
Wired = SkipValidation[Service]
Caller = NamedDependency[Scope]
"""The scope of the request's bearer token (`provide_scope`)."""
Sessions = NamedDependency[SessionService]
Recorder = NamedDependency[Recording]
"""The caller's scope and the use cases (`provide_recording`), for the recording handlers."""
Erasure = NamedDependency[SessionErasure]
KeepAliveSeconds = NamedDependency[float]
"""Seconds between keep-alive comments on a live stream."""
"""The composition root's `Service`, as the health check sees it (not validated: it is no body)."""
Notifications = SkipValidation[Notifier]
"""Ports as handler parameters. Litestar checks each injected value against its annotation with
`isinstance`, which a Protocol only allows when `runtime_checkable`; the providers' own return
types already say what they give, so the check is skipped."""

T = TypeVar("T")


class ExactBody(AbstractDTO[T]):
    """Gives a handler's `data: bytes` the request body untouched, and documents it as `T`.

    Bodies are decoded by `bodies` and `application.validation`, not by Litestar, so that `data`
    is kept to the byte (ADR 0006) and every bad field is named in the contract's words; yet the
    OpenAPI document should say what a body holds. A DTO is Litestar's hook for both: how the body
    reaches the handler (`decode_bytes`) and how it is documented (`create_openapi_schema`).
    `ExactBody[NewEvent]` documents the body as the `NewEvent` Struct and decodes nothing."""

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Generator[DTOFieldDefinition, None, None]:
        yield from ()  # nothing is transferred field by field

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        """No transfer backend to build: the handler's `data` is the body's bytes."""

    @classmethod
    def is_supported_model_type_field(cls, field_definition: FieldDefinition) -> bool:
        return False  # never used for answers

    def decode_bytes(self, value: bytes) -> bytes:
        return value

    @classmethod
    def create_openapi_schema(cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any) -> Any:
        return schema_creator.for_field_definition(FieldDefinition.from_annotation(cls.model_type))


DEPENDENCIES = {
    "credential": Provide(provide_credential),
    "caller": Provide(provide_scope, sync_to_thread=False),
    "limiter": Provide(provide_limiter, sync_to_thread=False),
    "sessions": Provide(provide_sessions, sync_to_thread=False),
    "recording": Provide(provide_recording, sync_to_thread=False),
    "erasure": Provide(provide_erasure, sync_to_thread=False),
    "tokens": Provide(provide_tokens, sync_to_thread=False),
    "notifier": Provide(provide_notifier, sync_to_thread=False),
    "keepalive": Provide(provide_keepalive, sync_to_thread=False),
}
"""What handlers may ask for by name (each is resolved only for the handlers that ask). The whole
`Service` is not among them: only `/health` is given it, to ask whether the store answers."""
