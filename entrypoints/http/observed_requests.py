"""Every request and WebSocket connection, seen once from outside the router: its request id
(the client's `X-Request-ID` if sane, else a new one; returned as a header), its count and
latency by route template and status (Prometheus), and, with JSON logs, its access-log line.

It wraps the application's whole ASGI handler, not a route's, so that a request no route
matched is counted too (under the route `<unmatched>`: raw paths never become labels or log
fields, so neither session ids nor query strings reach them)."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from entrypoints.http import metrics
from entrypoints.log_format import ACCESS_LOGGER, CURRENT_REQUEST, RequestInProgress

REQUEST_ID_HEADER = "x-request-id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
access_log = logging.getLogger(ACCESS_LOGGER)


class _RequestIds:
    """New request ids: this process's random prefix and a counter. Unique across processes and
    restarts like a UUID, without asking the kernel for randomness on every request (a system
    call, during which another thread may take the interpreter for milliseconds)."""

    def __init__(self) -> None:
        self._prefix = ""
        self._pid = 0
        self._count = itertools.count(1)

    def next(self) -> str:
        if self._pid != os.getpid():  # a forked process gets a prefix of its own
            self._pid, self._prefix, self._count = os.getpid(), secrets.token_hex(8), itertools.count(1)
        return f"{self._prefix}{next(self._count):08x}"


_new_request_id = _RequestIds()


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(text):
                return text
            break
    return _new_request_id.next()


class ObservedRequests:
    def __init__(
        self, app: ASGIApp, *, pool_usage: Callable[[], dict[str, int] | None], log_access: bool
    ) -> None:
        self._app = app
        self._pool_usage = pool_usage
        self._log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self._app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status: int | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status
            kind = message["type"]
            if kind in ("http.response.start", "websocket.accept"):
                fields: dict[str, Any] = dict(message)
                status = int(fields.get("status", 101))
                fields["headers"] = [*fields.get("headers", ()), header]
                message = fields  # type: ignore[assignment]
            elif kind == "websocket.close" and status is None:
                status = 403  # closed before it was accepted: the handshake was refused
            await send(message)

        reset = CURRENT_REQUEST.set(RequestInProgress(request_id, scope))
        started = time.perf_counter()
        try:
            await self._app(scope, receive, observed_send)
        finally:
            duration = time.perf_counter() - started
            self._observe(scope, status, duration)
            CURRENT_REQUEST.reset(reset)

    def _observe(self, scope: Scope, status: int | None, duration: float) -> None:
        route = str(scope.get("path_template") or metrics.UNMATCHED)
        method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
        answered = str(status) if status is not None else ("500" if scope["type"] == "http" else "disconnected")
        metrics.REQUESTS.labels(method, route, answered).inc()
        metrics.LATENCY.labels(method, route, answered).observe(duration)
        metrics.pool_usage(self._pool_usage)
        if self._log_access:
            access_log.info(
                "%s %s %s",
                method,
                route,
                answered,
                extra={"route": route, "status": status, "duration_ms": round(duration * 1000, 3)},
            )
