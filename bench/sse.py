"""A Server-Sent Events reader for case 5, timing each `session_events` notification the moment
its blank line arrives. Stdlib `http.client`, like the load generator, so both sides of a lag
pay the same client costs."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Notification:
    session_id: int
    event_count: int
    arrived: float
    """`time.perf_counter()` when the message was complete."""


@dataclass
class StreamReader:
    port: int
    token: str
    notifications: list[Notification] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.connected.wait(30) or self.error is not None:
            raise RuntimeError(f"the stream did not open: {self.error!r}")

    def _read(self) -> None:
        try:
            self._conn.request(
                "GET", "/api/stream", headers={"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            )
            response = self._conn.getresponse()
            if response.status != 200:
                raise RuntimeError(f"GET /api/stream: {response.status}")
            event, data = "", ""
            while True:
                line = response.readline()
                if not line:
                    return
                text = line.decode().rstrip("\r\n")
                if text.startswith(":"):
                    self.connected.set()
                elif text.startswith("event:"):
                    event = text[6:].strip()
                elif text.startswith("data:"):
                    data = text[5:].strip()
                elif text == "" and data:
                    if event == "session_events":
                        payload = json.loads(data)
                        arrived = time.perf_counter()
                        with self._lock:
                            self.notifications.append(
                                Notification(int(payload["session_id"]), int(payload["event_count"]), arrived)
                            )
                    event, data = "", ""
        except BaseException as error:
            if not self._closing:
                self.error = error
        finally:
            self.connected.set()

    _closing = False

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def close(self) -> None:
        self._closing = True
        if self._conn.sock is not None:
            self._conn.sock.shutdown(2)
        self._conn.close()
        self._thread.join(5)
