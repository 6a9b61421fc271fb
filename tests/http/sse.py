"""A small Server-Sent Events client for tests: reads a stream in a thread and collects it."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Message:
    event: str
    data: Any
    id: str | None


@dataclass
class StreamReader:
    base_url: str
    token: str
    last_event_id: str | None = None
    messages: list[Message] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    status_code: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self.connected.wait(15):
            raise AssertionError("stream did not connect")

    def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", f"{self.base_url}/api/stream", headers=headers) as response,
            ):
                self.status_code = response.status_code
                event, data, event_id = "message", [], None
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith(":"):
                        with self._lock:
                            self.comments.append(line[1:].strip())
                        self.connected.set()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line == "" and data:
                        with self._lock:
                            self.messages.append(Message(event, json.loads("\n".join(data)), event_id))
                        event, data, event_id = "message", [], None
                if self.status_code != 200:
                    self.connected.set()
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()
            self.ended.set()

    def of(self, event: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.event == event]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                snapshot = list(self.messages)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise AssertionError(f"timed out; got {self.messages}")

    def close(self) -> None:
        self._stop.set()
