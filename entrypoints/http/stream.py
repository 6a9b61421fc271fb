"""Live notifications over Server-Sent Events (`GET /api/stream`) and WebSocket (`/api/ws`).

Each message is `{"session_id", "event_count"}` (event `session_events`), the session's new
`status` / `external_conversation_id` (event `session_updated`), or `{"session_id"}` of a session
erased (event `session_erased`), sent once what it announces can be read. Its id resumes the
stream: reconnect with `Last-Event-ID` and what was missed is sent first; if that is no longer
possible the client gets a `resync` event and should re-query."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from litestar import Response, WebSocket, get, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import HeaderParameter, Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from application.errors import RateLimited
from application.notifications import (
    Cursor,
    Notification,
    Notifier,
    SubscriptionClosed,
    SubscriptionLagged,
    SubscriptionRevoked,
)
from application.scope import Scope
from application.tokens import Credential, TokenRejected
from entrypoints.http.errors import Problem
from entrypoints.http.metrics import open_stream
from entrypoints.http.openapi import ContractOperation, errors_documented
from entrypoints.http.providers import KeepAliveSeconds, Limiter, Notifications, Tokens, admit
from entrypoints.http.schemas import answer

KEEPALIVE_SECONDS = 10.0
"""Under the contract's 15 s, with room for a slow network (the default of `Settings.keepalive_seconds`)."""
REPLAY_LIMIT = 1000
RESYNC = "resync"
RESYNC_REASON = {"reason": "notifications were missed; re-query your sessions"}


class Connected:
    """Subscribed: from now on nothing for the caller is missed."""


class KeepAlive:
    pass


class Revoked:
    """The stream's token was revoked, or has expired: the stream ends."""


class Resync:
    """The caller missed notifications that cannot be re-sent: it should re-query. `cursor` is
    where the feed stands, so a later resume does not ask for the same resync again."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor

    @property
    def event_id(self) -> str:
        return f"{self.cursor.position}.{self.cursor.rank}"


StreamItem = Connected | Notification | Resync | KeepAlive | Revoked


async def notifications(
    notifier: Notifier,
    caller: Scope,
    last_seen: Cursor | None,
    keepalive: float = KEEPALIVE_SECONDS,
    credential: Credential | None = None,
) -> AsyncIterator[StreamItem]:
    """The caller's notifications: first what it missed since `last_seen`, then live ones; ends
    when the service shuts down, or (after `Revoked`) when the `credential`'s token is revoked
    or expires."""
    token_id, expires_at = (credential.token_id, credential.expires_at) if credential else (None, None)
    # Subscribed before the replay, so nothing falls in between.
    subscription = notifier.subscribe(caller, token_id=token_id, expires_at=expires_at)
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
            except SubscriptionRevoked:
                yield Revoked()
                return
            except SubscriptionClosed:
                return
            if notification is None:
                yield KeepAlive()
            elif sent is None or notification.cursor > sent:
                yield notification
                sent = notification.cursor
    finally:
        subscription.close()


_EVENTS = (
    "Events: `session_events` `{session_id, event_count}` once a call's events can be read; "
    "`session_updated` `{session_id, status, external_conversation_id}` when a call changed the session; "
    "`session_erased` `{session_id}` once a session has been erased (`DELETE /api/sessions/{id}` or "
    "`sessions prune`): forget it, it answers 404 from now on, and what was sent about it is never replayed; "
    "`resync` `{reason}`: notifications were missed, re-query. Each event's `id` resumes the stream. "
    "Ignore event names you do not know: more may be added."
)
_SSE_EXAMPLE = (
    ": connected\nretry: 2000\n\n"
    'event: session_events\nid: 42\ndata: {"session_id": 7, "event_count": 3}\n\n'
    'event: session_updated\nid: 42.1\ndata: {"session_id": 7, "status": "complete", '
    '"external_conversation_id": "conv-1"}\n\n'
    ": keep-alive\n\n"
)


@get(
    "/stream",
    tags=["notifications"],
    summary="Live notifications (Server-Sent Events)",
    description=f"The caller's notifications as Server-Sent Events. {_EVENTS} Resume with the `Last-Event-ID` "
    "header (or `?last_event_id=`): what was missed is sent first. A comment is sent every "
    f"{KEEPALIVE_SECONDS:g} s to keep the connection alive.",
    responses={
        200: ResponseSpec(
            str,
            media_type="text/event-stream",
            description=f"An endless `text/event-stream`. {_EVENTS}",
            examples=[Example(summary="A stream", value=_SSE_EXAMPLE)],
            generate_examples=False,
        ),
        **errors_documented(401, 503),
    },
    operation_class=ContractOperation,
)
async def stream(
    credential: NamedDependency[Credential],
    notifier: Notifications,
    keepalive: KeepAliveSeconds,
    last_event_id_header: Annotated[
        str | None,
        HeaderParameter(name="last-event-id", description="The `id` of the last event received, to resume."),
    ] = None,
    last_event_id: str | None = Parameter(
        default=None, description="Same as the `Last-Event-ID` header, for clients that cannot set it."
    ),
) -> ServerSentEvent:
    last_seen = Cursor.parse(last_event_id_header or last_event_id)

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        with open_stream("sse"):
            async for item in notifications(notifier, credential.scope, last_seen, keepalive, credential):
                if isinstance(item, Revoked):
                    return  # a client that reconnects is told why: 401
                if isinstance(item, Notification):
                    data = json.dumps(dict(item.payload))
                    yield ServerSentEventMessage(event=item.kind, id=item.event_id, data=data)
                elif isinstance(item, Resync):
                    yield ServerSentEventMessage(event=RESYNC, id=item.event_id, data=json.dumps(RESYNC_REASON))
                elif isinstance(item, Connected):
                    yield ServerSentEventMessage(comment="connected", data=None, retry=2000)
                else:
                    yield ServerSentEventMessage(comment="keep-alive", data=None)

    return ServerSentEvent(messages(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@websocket("/ws")
async def notifications_socket(
    socket: WebSocket[Any, Any, Any],
    tokens: Tokens,
    limiter: Limiter,
    notifier: Notifications,
    keepalive: KeepAliveSeconds,
) -> None:
    """Browsers cannot set headers on a WebSocket: the token comes as `?token=`. Messages are
    JSON objects `{"event", "id", "data"}`."""
    token = socket.query_params.get("token") or ""
    try:
        credential = await anyio.to_thread.run_sync(admit, tokens, limiter, token)
        refusal = None
    except TokenRejected as rejected:
        credential, refusal = None, (4401, str(rejected))
    except RateLimited as limited:
        credential, refusal = None, (4429, f"rate limited; retry in {limited.retry_after} s")
    await socket.accept()  # then close with a code a browser can read (a refused handshake is opaque)
    if credential is None:
        code, reason = refusal or (4401, "missing token")
        await socket.close(code=code, reason=reason)
        return
    last_seen = Cursor.parse(socket.query_params.get("last_event_id"))
    with open_stream("websocket"):
        await _send_notifications(socket, notifier, credential, last_seen, keepalive)


async def _send_notifications(
    socket: WebSocket[Any, Any, Any],
    notifier: Notifier,
    credential: Credential,
    last_seen: Cursor | None,
    keepalive: float,
) -> None:
    try:
        async for item in notifications(notifier, credential.scope, last_seen, keepalive, credential):
            if isinstance(item, Revoked):
                await socket.close(code=4401, reason="token revoked or expired")
                return
            if isinstance(item, Notification):
                await socket.send_json({"event": item.kind, "id": item.event_id, "data": dict(item.payload)})
            elif isinstance(item, Resync):
                await socket.send_json({"event": RESYNC, "id": item.event_id, "data": RESYNC_REASON})
            elif isinstance(item, KeepAlive):
                await socket.send_json({"event": "keep-alive"})
        await socket.close(code=1001, reason="service shutting down")
    except WebSocketDisconnect:
        return


@get(
    "/api/ws",
    tags=["notifications"],
    status_code=426,
    summary="Live notifications (WebSocket)",
    description="A WebSocket (OpenAPI cannot describe one: this is its handshake). Connect with "
    "`Upgrade: websocket` and the token as `?token=` (browsers cannot set headers on a WebSocket). "
    f"Each message is a JSON object `{{event, id, data}}`. {_EVENTS} `keep-alive` messages (no id) come "
    f"every {KEEPALIVE_SECONDS:g} s. The server closes with code 4401 for a missing, unknown, revoked or "
    "expired token (also when the token is revoked or expires while the socket is open), 4429 when the token "
    "is over its rate limit, and 1001 when it shuts down. "
    "Resume with `?last_event_id=`. A plain HTTP request (without the upgrade) is answered 426.",
    responses={
        101: ResponseSpec(None, description="Switching Protocols: the WebSocket is open."),
    },
    response_description="Upgrade Required: this path only speaks WebSocket.",
    operation_class=ContractOperation,
    sync_to_thread=False,
)
def notifications_socket_handshake(
    token: str | None = Parameter(default=None, description="An API token (required by the WebSocket)."),
    last_event_id: str | None = Parameter(default=None, description="The `id` of the last message received."),
) -> Response[Problem]:
    """Documents `/api/ws` in the OpenAPI document, and tells a plain HTTP client what it missed."""
    body = Problem("upgrade_required", "this path is a WebSocket: connect with Upgrade: websocket")
    return answer(body, status_code=426, headers={"Upgrade": "websocket"})
