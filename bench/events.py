"""The events the suite sends, and the same events as rows for the raw baselines.

Both sides get identical contents (client-chosen UUID, type, `sent_at`, ~150 bytes of JSON
`data`), so a baseline writes what the service writes, not a cheaper stand-in. Bodies are built
before the clock starts: the load generator then only sends bytes."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

EVENT_TYPES = ("tool_called", "tool_result", "file_modified", "command_output", "error_occurred")
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    id: uuid.UUID
    event_type: str
    sent_at: datetime
    data: str
    """The JSON text of `data`, as sent and as the read model keeps it."""

    def as_json(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "event_type": self.event_type,
            "sent_at": self.sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": json.loads(self.data),
        }


class EventFactory:
    """Makes a realistic mix (tool calls and their results, edits, output, errors), so that
    both read models (`session_events`, `session_stats`) have real work per event."""

    def __init__(self) -> None:
        self._numbers = count()

    def event(self) -> Event:
        k = next(self._numbers)
        kind = EVENT_TYPES[k % len(EVENT_TYPES)]
        data = {
            "tool_called": {"tool_name": f"Tool{k % 7}", "tool_use_id": f"u{k}", "args": {"path": f"src/m{k % 97}.py"}},
            "tool_result": {"tool_use_id": f"u{k - 1}", "success": k % 3 != 0, "bytes": k, "duration_ms": k % 977},
            "file_modified": {"path": f"src/pkg/module_{k % 97}.py", "lines_added": k % 50, "lines_removed": k % 7},
            "command_output": {"command": "pytest -q", "exit_code": k % 2, "output": "." * 64},
            "error_occurred": {"message": f"boom {k}", "kind": "RuntimeError"},
        }[kind]
        return Event(uuid.uuid4(), kind, BASE_TIME + timedelta(milliseconds=k), json.dumps(data))

    def events(self, n: int) -> list[Event]:
        return [self.event() for _ in range(n)]

    def single_body(self) -> bytes:
        return json.dumps(self.event().as_json()).encode()

    def batch_body(self, n: int) -> bytes:
        return batch_body(self.events(n))


def batch_body(events: list[Event]) -> bytes:
    return json.dumps({"events": [event.as_json() for event in events]}).encode()
