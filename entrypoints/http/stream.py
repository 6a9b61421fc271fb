"""Live notifications over Server-Sent Events (`GET /api/stream`) and WebSocket (`/api/ws`).

Each message is `{"session_id", "event_count"}` (event `session_events`) or the session's new
`status` / `external_conversation_id` (event `session_updated`), sent once what it announces can
be read. Its id resumes the stream: reconnect with `Last-Event-ID` and what was missed is sent
first; if that is no longer possible the client gets a `resync` event and should re-query."""

from __future__ import annotations

import json
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

KEEPALIVE_SECONDS = 10.0
"""Under the contract's 15 s, with room for a slow network (`Settings.keepalive_seconds`)."""
REPLAY_LIMIT = 1000
RESYNC = "resync"
RESYNC_REASON = {"reason": "notifications were missed; re-query your sessions"}


def provide_notifier(state: State) -> Notifier:
    return provide_service(state).notifier


class Connected:
    """Subscribed: from now on nothing for the caller is missed."""


class KeepAlive:
    pass


class Resync:
    """The caller missed notifications that cannot be re-sent: it should re-query. `cursor` is
    where the feed stands, so a later resume does not ask for the same resync again."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor

    @property
    def event_id(self) -> str:
        return f"{self.cursor.position}.{self.cursor.rank}"


StreamItem = Connected | Notification | Resync | KeepAlive


async def notifications(
    notifier: Notifier, caller: Scope, last_seen: Cursor | None, keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[StreamItem]:
    """The caller's notifications: first what it missed since `last_seen`, then live ones; ends
    when the service shuts down."""
    subscription = notifier.subscribe(caller)  # before the replay, so nothing falls in between
    try:
        yield Connected()
        sent = last_seen
        if last_seen is not None:
            backlog = await anyio.to_thread.run_sync(notifier.replay, caller, last_seen, REPLAY_LIMIT + 1)
            if backlog is None or len(backlog) > REPLAY_LIMIT:
                sent = await anyio.to_thread.run_sync(notifier.current)
                yield Resync(sent)
            else:
                for missed in backlog:
                    yield missed
                    sent = missed.cursor
        while True:
            try:
                notification = await subscription.next(timeout=keepalive)
            except SubscriptionLagged:
                sent = await anyio.to_thread.run_sync(notifier.current)
                yield Resync(sent)
                continue
            except SubscriptionClosed:
                return
            if notification is None:
                yield KeepAlive()
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
    "(or `?last_event_id=`). A comment is sent every 10 s to keep the connection alive.",
)
async def stream(request: Request[Any, Any, Any], caller: Scope, notifier: Notifier, state: State) -> ServerSentEvent:
    keepalive = provide_service(state).settings.keepalive_seconds
    last_seen = Cursor.parse(request.headers.get("last-event-id") or request.query_params.get("last_event_id"))

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        async for item in notifications(notifier, caller, last_seen, keepalive):
            if isinstance(item, Notification):
                yield ServerSentEventMessage(event=item.kind, id=item.event_id, data=json.dumps(dict(item.payload)))
            elif isinstance(item, Resync):
                yield ServerSentEventMessage(event=RESYNC, id=item.event_id, data=json.dumps(RESYNC_REASON))
            elif isinstance(item, Connected):
                yield ServerSentEventMessage(comment="connected", data=None, retry=2000)
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
        async for item in notifications(service.notifier, caller, last_seen, service.settings.keepalive_seconds):
            if isinstance(item, Notification):
                await socket.send_json({"event": item.kind, "id": item.event_id, "data": dict(item.payload)})
            elif isinstance(item, Resync):
                await socket.send_json({"event": RESYNC, "id": item.event_id, "data": RESYNC_REASON})
            elif isinstance(item, KeepAlive):
                await socket.send_json({"event": "keep-alive"})
        await socket.close(code=1001, reason="service shutting down")
    except WebSocketDisconnect:
        return
