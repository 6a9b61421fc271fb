"""Live notifications over Server-Sent Events (`GET /api/stream`) and WebSocket (`/api/ws`).

Each message is `{"session_id", "event_count"}` (event `session_events`) or the session's new
`status` / `external_conversation_id` (event `session_updated`), sent once what it announces can
be read. Its id resumes the stream: reconnect with `Last-Event-ID` and what was missed is sent
first; if that is no longer possible the client gets a `resync` event and should re-query."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio
from litestar import Request, WebSocket, get, websocket
from litestar.datastructures import State
from litestar.exceptions import WebSocketDisconnect
from litestar.response import ServerSentEvent, ServerSentEventMessage

from application.notifications import (
    Cursor,
    Notification,
    Notifier,
    SubscriptionClosed,
    SubscriptionLagged,
)
from application.scope import Scope
from entrypoints.http.auth import provide_service

KEEPALIVE_SECONDS = float(os.environ.get("SESSION_EVENTS_KEEPALIVE_SECONDS", "15"))
REPLAY_LIMIT = 1000
RESYNC = "resync"


def provide_notifier(state: State) -> Notifier:
    return provide_service(state).notifier


async def notifications(
    notifier: Notifier, caller: Scope, last_seen: Cursor | None
) -> AsyncIterator[Notification | str]:
    """The caller's notifications: first what it missed since `last_seen`, then live ones.
    Yields `RESYNC` when it must re-query and "" when it is time for a keep-alive; ends when the
    service shuts down."""
    subscription = notifier.subscribe(caller)  # before the replay, so nothing falls in between
    try:
        sent = last_seen
        if last_seen is not None:
            backlog = await anyio.to_thread.run_sync(notifier.replay, caller, last_seen, REPLAY_LIMIT)
            if backlog is None or len(backlog) >= REPLAY_LIMIT:
                yield RESYNC
                sent = None
            else:
                for notification in backlog:
                    yield notification
                    sent = notification.cursor
        while True:
            try:
                notification = await subscription.next(timeout=KEEPALIVE_SECONDS)
            except SubscriptionLagged:
                yield RESYNC
                continue
            except SubscriptionClosed:
                return
            if notification is None:
                yield ""  # keep-alive
            elif sent is None or notification.cursor > sent:
                yield notification
                sent = notification.cursor
    finally:
        subscription.close()


@get(
    "/stream",
    summary="Live notifications (Server-Sent Events)",
    description="Events `session_events` {session_id, event_count} and `session_updated` {session_id, status, "
    "external_conversation_id}; `resync` means re-query. Resume with the `Last-Event-ID` header "
    "(or `?last_event_id=`). A comment is sent every 15 s to keep the connection alive.",
)
async def stream(request: Request[Any, Any, Any], caller: Scope, notifier: Notifier) -> ServerSentEvent:
    last_seen = Cursor.parse(request.headers.get("last-event-id") or request.query_params.get("last_event_id"))

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        yield ServerSentEventMessage(comment="connected", data=None, retry=2000)
        async for item in notifications(notifier, caller, last_seen):
            if isinstance(item, Notification):
                yield ServerSentEventMessage(event=item.kind, id=item.event_id, data=json.dumps(dict(item.payload)))
            elif item == RESYNC:
                yield ServerSentEventMessage(event=RESYNC, data=json.dumps({"reason": "re-query your sessions"}))
            else:
                yield ServerSentEventMessage(comment="keep-alive", data=None)

    return ServerSentEvent(messages(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@websocket("/ws")
async def notifications_socket(socket: WebSocket[Any, Any, Any], state: State) -> None:
    """Browsers cannot set headers on a WebSocket: the token comes as `?token=`. Messages are
    JSON objects `{"event", "id", "data"}`."""
    service = provide_service(state)
    token = socket.query_params.get("token") or ""
    caller = await anyio.to_thread.run_sync(service.tokens.scope_of, token) if token else None
    await socket.accept()  # then close with a code a browser can read (a refused handshake is opaque)
    if caller is None:
        await socket.close(code=4401, reason="missing or unknown token")
        return
    last_seen = Cursor.parse(socket.query_params.get("last_event_id"))
    try:
        async for item in notifications(service.notifier, caller, last_seen):
            if isinstance(item, Notification):
                await socket.send_json({"event": item.kind, "id": item.event_id, "data": dict(item.payload)})
            elif item == RESYNC:
                await socket.send_json({"event": RESYNC, "data": {"reason": "re-query your sessions"}})
            else:
                await socket.send_json({"event": "keep-alive"})
        await socket.close(code=1001, reason="service shutting down")
    except WebSocketDisconnect:
        return
