"""Assembles the Litestar application: routes, providers, error mapping, OpenAPI and docs pages,
and the service's lifecycle. Nothing here handles a request."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

from litestar import Litestar, Router
from litestar.types import Empty

from entrypoints.bootstrap import Service, bootstrap
from entrypoints.heap import freeze_startup_heap
from entrypoints.http import metrics as metrics_module
from entrypoints.http.errors import EXCEPTION_HANDLERS
from entrypoints.http.log_redaction import redact_tokens_in_server_logs
from entrypoints.http.metrics import metrics
from entrypoints.http.observed_requests import ObservedRequests
from entrypoints.http.openapi import SECURITY, docs_assets, openapi_config
from entrypoints.http.providers import DEPENDENCIES
from entrypoints.http.routes import events, sessions, stats
from entrypoints.http.routes.health import health
from entrypoints.http.security_headers import add_security_headers
from entrypoints.http.stream import notifications_socket, notifications_socket_handshake, stream

MAX_BODY_BYTES = 10 * 1024 * 1024


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


def create_app_with_json_logs() -> Litestar:
    """The factory `serve --log-format json` runs: the process's logging is already configured
    (JSON lines, by uvicorn's `log_config`), so Litestar must not replace it, and each request
    gets an access-log line with its route, status, duration and request id."""
    logging.captureWarnings(True)  # a library's warning is a log line too, not raw text
    return create_app(json_logs=True)


def create_app(service: Service | None = None, *, json_logs: bool = False) -> Litestar:
    """`service` lets tests inject a wired service; by default it is built from the environment
    when the app starts, and closed when it stops. Without `json_logs` logging is as it always
    was: Litestar's own configuration, and uvicorn's access log."""

    def start(app: Litestar) -> None:
        app.state.service = service if service is not None else bootstrap()
        app.state.service.sessions.observe_groups(metrics_module.group_saved)
        if service is None:  # a serving process, built now and living until it stops
            freeze_startup_heap()
        # Blocking handlers run in the loop's default executor, min(32, cores + 4) threads unless
        # told otherwise: 6 here, too few for requests that wait on locks or the read model.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(app.state.service.request_threads, thread_name_prefix="session-events")
        )
        _close_streams_on_signal(app.state.service)
        redact_tokens_in_server_logs()

    def stop(app: Litestar) -> None:
        if service is None and getattr(app.state, "service", None) is not None:
            app.state.service.close()

    api = Router(
        path="/api",
        route_handlers=[*sessions.ROUTES, *events.ROUTES, *stats.ROUTES, stream, notifications_socket],
        security=SECURITY,
        request_max_body_size=MAX_BODY_BYTES,
    )
    app = Litestar(
        # The WebSocket's documented handshake sits outside `/api`: its token is no bearer header.
        route_handlers=[api, notifications_socket_handshake, health, metrics, docs_assets()],
        dependencies=DEPENDENCIES,
        on_startup=[start],
        on_shutdown=[stop],
        exception_handlers=EXCEPTION_HANDLERS,
        before_send=[add_security_headers],
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=openapi_config(version("session-events")),
        logging_config=None if json_logs else Empty,
    )

    def pool_usage() -> dict[str, int] | None:
        running: Service | None = getattr(app.state, "service", None)
        return running.pool_usage() if running is not None else None

    app.asgi_handler = ObservedRequests(app.asgi_handler, pool_usage=pool_usage, log_access=json_logs)
    return app
