"""Headers every answer carries, errors and docs pages included, so that a browser never sniffs a
JSON body into something else, frames the service, or keeps an API answer in a shared cache.

CORS is off: no answer carries `Access-Control-Allow-*`, so browsers on other origins cannot read
the API (live streams in a browser use the WebSocket variant, which needs no CORS)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
}
API = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
"""JSON answers (not the docs pages, whose Swagger UI runs scripts of its own)."""


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    for name, value in ALWAYS.items():
        headers[name] = value
    if not scope["path"].startswith("/docs"):
        for name, value in API.items():
            if name not in headers:  # the stream sets its own Cache-Control
                headers[name] = value
