"""Sends spooled events to the service: one batch per call, per Claude Code session, in order.

What the service answers decides what happens to a batch:
- 2xx: the events leave the spool.
- unreachable, 408, 429, 5xx: `RetryLater` (with the service's `Retry-After` when it sent one);
  the events stay, and the caller backs off. Stable event ids make the retry safe.
- 422 with an `index`: that one event is parked as rejected; the rest are sent next time.
- 400/413/422 without an index: the batch is halved until the bad event is alone, then parked.
- 404 on a session we remembered: the mapping is stale (the session was deleted, or the token
  now has another scope); it is forgotten and the session looked up again.
- 401, 403, any other 4xx: the batch is parked with the reason. It is never retried on its own
  (`flush --requeue-rejected` puts it back), and the events behind it go on.

A Claude Code session's service session is found with `GET /api/sessions?conversation_id=` or
created; a session created here is sent `conversation_started` first if the spool no longer has
it (the id depends on the Claude Code session alone, so a duplicate is recorded once)."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.claude_code.encoding import encode_data
from adapters.claude_code.mapping import conversation_started
from adapters.claude_code.spool import Spool, SpooledEvent

MAX_BATCH_EVENTS = 1000
MAX_BATCH_BYTES = 8 * 1024 * 1024  # the service takes 10 MiB per request
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 600.0
SESSION_AGENT = "claude-code"
MAX_CWD_CHARS = 4096  # the session's `state` is capped by the service; a path never needs more

_RETRIABLE = {408, 425, 429, 500, 502, 503, 504}
_SPLITTABLE = {400, 413, 422}


class RetryLater(Exception):
    """The service cannot take events right now; nothing was lost, try again later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def describe(self, method: str, path: str) -> str:
        text = self.body[:300].decode("utf-8", errors="replace").strip()
        return f"{method} {path} answered {self.status}: {text}"

    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(when - (time.time() if now is None else now), 0.0), MAX_RETRY_AFTER_SECONDS)


class ServiceClient:
    """A keep-alive HTTP/1.1 connection to the service, with the bearer token on every call."""

    def __init__(self, base_url: str, token: str, timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._prefix = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._scheme == "https":
                self._connection = http.client.HTTPSConnection(self._netloc, timeout=self._timeout)
            else:
                self._connection = http.client.HTTPConnection(self._netloc, timeout=self._timeout)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            connection = self._connect()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                answer = connection.getresponse()
                payload = answer.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # A kept-alive connection the server closed meanwhile: reconnect once.
                self.close()
                if attempt == 0:
                    continue
                raise RetryLater(f"{self.base_url} is unreachable: {error}") from error
            except (OSError, http.client.HTTPException) as error:
                self.close()
                raise RetryLater(f"{self.base_url} is unreachable: {_describe_error(error)}") from error
            if answer.getheader("connection", "").lower() == "close":
                self.close()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, payload)
        raise AssertionError("unreachable")


def _describe_error(error: BaseException) -> str:
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


@dataclass
class SendReport:
    """What one or more `send_next` calls did, for the log and for `flush`."""

    sent: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def add_rejection(self, count: int, reason: str) -> None:
        self.rejected += count
        if reason not in self.reasons:
            self.reasons.append(reason)


class Sender:
    def __init__(
        self,
        spool: Spool,
        client: ServiceClient,
        *,
        report: SendReport | None = None,
        on_rejected: Callable[[int, str], None] | None = None,
        max_events: int = MAX_BATCH_EVENTS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self.spool = spool
        self.client = client
        self.report = report or SendReport()
        self._on_rejected = on_rejected
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._forgotten: set[str] = set()

    def send_next(self) -> bool:
        """Sends (or parks) the next batch; False when nothing is waiting. Raises RetryLater."""
        batch = self.spool.next_batch(self.max_events, self.max_bytes)
        if not batch:
            return False
        conversation = batch[0].conversation_id
        found = self._session_for(conversation, batch)
        if found is None:
            return True
        session_id, opened = found
        opening = None
        if not opened and batch[0].event_type != "conversation_started":
            opening = self._opening_event(conversation, batch[0].sent_at)
        if self._send_batch(conversation, session_id, batch, opening) and not opened:
            self.spool.mark_opened(self.client.base_url, conversation)
        return True

    def drain(self) -> None:
        while self.send_next():
            pass

    # --- sessions ---------------------------------------------------------------------------

    def _session_for(self, conversation: str, batch: list[SpooledEvent]) -> tuple[int, bool] | None:
        """The service session for a Claude Code session, and whether it has had its first batch;
        None when the events were parked instead."""
        base = self.client.base_url
        known = self.spool.remote_session(base, conversation)
        if known is not None:
            return known
        path = "/api/sessions?" + urllib.parse.urlencode({"conversation_id": conversation})
        answer = self.client.request("GET", path)
        if not self._acceptable(answer, "GET", path, batch):
            return None
        matching = _sessions_for(answer, conversation)
        if matching is None:
            raise RetryLater(f"GET {path} answered {answer.status} with an unexpected body")
        if matching:
            session_id, opened = min(matching), True
        else:
            cwd = self.spool.conversation_cwd(conversation)
            body: dict[str, Any] = {"agent": SESSION_AGENT}
            if cwd and len(cwd) <= MAX_CWD_CHARS:
                body["state"] = {"cwd": cwd}
            answer = self.client.request("POST", "/api/sessions", json.dumps(body).encode())
            if not self._acceptable(answer, "POST", "/api/sessions", batch):
                return None
            try:
                session_id, opened = int(answer.json()["data"]["id"]), False
            except (ValueError, KeyError, TypeError) as error:
                raise RetryLater(f"POST /api/sessions answered {answer.status} with an unexpected body") from error
        # Remembered at once: until its conversation_started is stored, a new session cannot be
        # found by conversation id, and looking again would create a second one.
        self.spool.remember_session(base, conversation, session_id, opened=opened)
        return session_id, opened

    def _acceptable(self, answer: Response, method: str, path: str, batch: list[SpooledEvent]) -> bool:
        """True on success; raises RetryLater when it may pass; parks the batch otherwise."""
        if 200 <= answer.status < 300:
            return True
        if answer.status in _RETRIABLE:
            raise RetryLater(answer.describe(method, path), answer.retry_after())
        self._park(batch, answer.status, answer.describe(method, path))
        return False

    def _opening_event(self, conversation: str, sent_at: str) -> str:
        started = conversation_started({"session_id": conversation, "cwd": self.spool.conversation_cwd(conversation)})
        data, _size = encode_data(started.data)
        return _event_json(started.id, started.event_type.value, sent_at, data)

    # --- batches ----------------------------------------------------------------------------

    def _send_batch(self, conversation: str, session_id: int, batch: list[SpooledEvent], opening: str | None) -> bool:
        """True when the batch (or, after a split, its first half) was stored."""
        path = f"/api/sessions/{session_id}/events/batch"
        events = [_event_json(e.id, e.event_type, e.sent_at, e.data) for e in batch]
        if opening is not None:
            events.insert(0, opening)
        body = ('{"events":[' + ",".join(events) + "]}").encode("utf-8")
        answer = self.client.request("POST", path, body)
        status = answer.status
        if 200 <= status < 300:
            self.spool.delete(batch)
            self.report.sent += len(batch)
            return True
        if status in _RETRIABLE:
            raise RetryLater(answer.describe("POST", path), answer.retry_after())
        if status == 404 and conversation not in self._forgotten:
            # The remembered session is gone (deleted, or the token's scope changed): look again.
            self._forgotten.add(conversation)
            self.spool.forget_session(self.client.base_url, conversation)
            return False
        if status in _SPLITTABLE:
            index = _error_index(answer)
            if index is not None and opening is not None:
                index -= 1
            if index is not None and 0 <= index < len(batch):
                self._park([batch[index]], status, answer.describe("POST", path))
                return False
            if len(batch) > 1:
                # Which event is at fault is unknown: send the first half alone; the rest stays.
                return self._send_batch(conversation, session_id, batch[: len(batch) // 2], opening)
        self._park(batch, status, answer.describe("POST", path))
        return False

    def _park(self, batch: list[SpooledEvent], status: int | None, reason: str) -> None:
        count = self.spool.park(batch, status, reason)
        self.report.add_rejection(count, reason)
        if self._on_rejected is not None:
            self._on_rejected(count, reason)


def _event_json(event_id: str, event_type: str, sent_at: str, data: str) -> str:
    # `data` is already JSON text: spliced in as is, never decoded and encoded again.
    return f'{{"id":"{event_id}","event_type":"{event_type}","sent_at":"{sent_at}","data":{data}}}'


def _sessions_for(answer: Response, conversation: str) -> list[int] | None:
    """Ids of the listed sessions whose external_conversation_id is the conversation (checked
    here too, so a service that ignores the filter cannot make us pick a stranger's session)."""
    try:
        listed = answer.json()["data"]
        return [
            int(session["id"])
            for session in listed
            if isinstance(session, dict) and session.get("external_conversation_id") == conversation
        ]
    except (ValueError, KeyError, TypeError):
        return None


def _error_index(answer: Response) -> int | None:
    try:
        index = answer.json().get("index")
    except (ValueError, AttributeError):
        return None
    return index if isinstance(index, int) and not isinstance(index, bool) else None


class Backoff:
    """Exponential backoff with jitter: the ceiling doubles from `base` to `cap`; each delay is
    drawn from its upper half, and is never shorter than the service's Retry-After."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self._rng = base, cap, rng
        self.failures = 0

    def next_delay(self, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        delay = ceiling / 2 + self._rng() * ceiling / 2
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    def reset(self) -> None:
        self.failures = 0
