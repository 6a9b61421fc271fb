"""The OpenAPI document and the docs pages (`/docs`), which work without internet access.

Litestar documents a route from its signature; what a signature cannot say is added here: each
route's error answers (`errors_documented`), their headers and the bearer scheme
(`ContractOperation`). The docs page is Swagger UI, served from the `swagger-ui-bundle-v2`
package rather than a CDN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPIHeader, Operation, RequestBody, Schema, SecurityScheme
from litestar.openapi.spec.enums import OpenAPIType
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # the package has no py.typed

from entrypoints.http.errors import RETRY_AFTER_SECONDS, FrameworkError, Invalid, NotFound, Problem

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
BEARER = "bearerAuth"
SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]
"""The requirement of every `/api` route but the WebSocket (whose token is a query parameter)."""

_ERRORS: dict[int, ResponseSpec] = {
    400: ResponseSpec(
        Invalid,
        description="Malformed body: not JSON, not UTF-8, nested too deeply, or not a JSON object. "
        "`errors.body` says which.",
        generate_examples=False,
    ),
    401: ResponseSpec(
        Problem,
        description="Missing, malformed, unknown, revoked or expired token (`WWW-Authenticate: Bearer`): "
        "`error` is `invalid_request` or `invalid_token`.",
        generate_examples=False,
    ),
    404: ResponseSpec(
        NotFound,
        description="No such session in the caller's scope (a foreign session answers exactly alike).",
        generate_examples=False,
    ),
    413: ResponseSpec(FrameworkError, description="The body is over 10 MiB.", generate_examples=False),
    422: ResponseSpec(
        Invalid,
        description="Invalid field or query parameter: `errors` maps each to its messages (`can't be blank`, "
        "`is invalid`, ...); a batch also says the 0-based `index` of the first invalid event; `hints` "
        "says what is accepted (e.g. the event types).",
        generate_examples=False,
    ),
    429: ResponseSpec(
        Problem,
        description="The token made more requests this minute than `SESSION_EVENTS_RATE_LIMIT` allows: "
        "`error` is `rate_limited`; retry after `Retry-After` seconds. Nothing of the call was stored.",
        generate_examples=False,
    ),
    503: ResponseSpec(
        Problem,
        description="The store is unreachable or too contended right now: retry after `Retry-After` seconds. "
        "`error` is `service_unavailable` or `too_much_contention`.",
        generate_examples=False,
    ),
}


def errors_documented(*status_codes: int) -> dict[int, ResponseSpec]:
    """The error answers a route can give, for its `responses=`. A route that takes a token
    (401) can also be rate limited (429)."""
    codes = sorted({*status_codes, 429} if 401 in status_codes else set(status_codes))
    return {code: _ERRORS[code] for code in codes}


_HEADERS = {
    "401": {
        "WWW-Authenticate": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING),
            description='`Bearer`, or `Bearer error="invalid_token"` for an unknown token (RFC 6750).',
        )
    },
    "429": {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING, examples=["17"]),
            description="Seconds until the token's next request would be admitted.",
        )
    },
    "503": {
        "Retry-After": OpenAPIHeader(
            schema=Schema(type=OpenAPIType.STRING, examples=[RETRY_AFTER_SECONDS]),
            description="Seconds to wait before retrying.",
        )
    },
}


@dataclass
class ContractOperation(Operation):
    """An operation as this API answers it.

    Litestar adds a generic `400 {status_code, detail}` to every route with parameters; this API
    never answers that (bad parameters are 422 `{"errors"}`, see `errors`), so it is dropped unless
    the route documents a 400 of its own. The 401 and 503 answers get their headers."""

    def __post_init__(self) -> None:
        responses = self.responses or {}
        generic = responses.get("400")
        if generic is not None and _is_litestar_generic_error(generic):
            del responses["400"]
        for status, headers in _HEADERS.items():
            if status in responses:
                response = responses[status]
                response.headers = {**(response.headers or {}), **headers}  # type: ignore[union-attr]


@dataclass
class OptionalBodyOperation(ContractOperation):
    """For a route whose body may be left out altogether (Litestar marks every body required)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


def _is_litestar_generic_error(response: Any) -> bool:
    content = getattr(response, "content", None) or {}
    schemas = [getattr(media, "schema", None) for media in content.values()]
    return any(isinstance(schema, Schema) and schema.required == ["detail", "status_code"] for schema in schemas)


DESCRIPTION = """Records the activity stream of IDE coding sessions.

Every `/api` route needs `Authorization: Bearer <token>` (create one with
`session-events tokens create --account-id A --user-id U`; press **Authorize** to use it here),
except `/api/ws`, which takes it as `?token=`. A session outside the token's scope answers exactly
like a missing one (404). Errors are JSON: 422 `{"errors": {field: [message, ...]}}` for invalid
input, 401/503 `{"error", "error_description"}`. Live notifications: `GET /api/stream`
(Server-Sent Events) or the WebSocket `/api/ws`."""


def openapi_config(version: str) -> OpenAPIConfig:
    favicon = f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>"
    return OpenAPIConfig(
        title="session-events",
        version=version,
        description=DESCRIPTION,
        path=DOCS_PATH,
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API token from `session-events tokens create`.",
                )
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=favicon,
            )
        ],
    )


def docs_assets() -> Router:
    """Swagger UI's scripts and styles, from the installed `swagger-ui-bundle-v2` package."""
    return create_static_files_router(
        path=ASSETS_PATH, directories=[swagger_ui_path], include_in_schema=False, name="docs-assets"
    )
