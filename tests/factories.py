"""One home for the test events, in the three shapes the layers take them.

- `wire_event`: the JSON body a client posts over HTTP (a dict for `httpx`'s `json=`);
- `raw_event`: what the HTTP layer hands the service, each field as its JSON text (`RawFields`);
- `new_event`: a validated `NewEvent`, as the `Session` aggregate records it.

All three default to the same valid `tool_called` event; keyword arguments replace fields, add
fields, or (given `...`) leave a field out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from domain.event_types import EventType
from domain.session import NewEvent

SENT_AT = "2026-01-01T00:00:00Z"
SENT_AT_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def wire_event(**fields: Any) -> dict[str, Any]:
    """An event object as a client sends it, e.g. `wire_event(event_type="tool_result", id=...)`."""
    values: dict[str, Any] = {"event_type": "tool_called", "sent_at": SENT_AT, "data": {}}
    values.update(fields)
    return {name: value for name, value in values.items() if value is not ...}


def raw_event(**fields: Any) -> dict[str, bytes]:
    """The same event as its fields' JSON texts. A `bytes` value is taken as the field's exact
    JSON text (`data=b'{"a": 1.0}'`), anything else is encoded with `json.dumps`."""
    return {
        name: value if isinstance(value, bytes) else json.dumps(value).encode()
        for name, value in wire_event(**fields).items()
    }


def new_event(
    event_type: EventType = EventType.TOOL_CALLED,
    data: dict[str, Any] | str | None = None,
    *,
    event_id: UUID | None = None,
    sent_at: datetime = SENT_AT_TIME,
    metadata_json: str | None = None,
    id_from_client: bool = False,
) -> NewEvent:
    """A validated event for the domain. `data` is a dict (encoded with `json.dumps`) or the
    exact JSON text."""
    data_json = data if isinstance(data, str) else json.dumps(data or {})
    return NewEvent(
        event_id=event_id or uuid4(),
        event_type=event_type,
        sent_at=sent_at,
        data_json=data_json,
        metadata_json=metadata_json,
        id_from_client=id_from_client,
    )
