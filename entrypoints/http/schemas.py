"""Response bodies (msgspec Structs). Event `data`/`metadata` are embedded as the stored JSON text
(`msgspec.Raw`), so a client gets back exactly what it sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from application.queries import RecordedEvent
from domain.session import Session


class SessionOut(msgspec.Struct):
    id: int
    account_id: int
    user_id: int
    status: str
    external_conversation_id: str | None
    event_count: int
    inserted_at: str
    updated_at: str
    type: str | None
    agent: str | None
    environment: str | None
    state: dict[str, Any] | None


class SessionEnvelope(msgspec.Struct):
    data: SessionOut


class SessionsEnvelope(msgspec.Struct):
    data: list[SessionOut]


class BatchRecorded(msgspec.Struct):
    data: SessionOut
    event_count: int


class EventOut(msgspec.Struct):
    id: str
    session_id: int
    event_type: str
    sent_at: str
    received_at: str
    data: dict[str, Any]
    metadata: dict[str, Any] | None
    sequence: int


class EventsEnvelope(msgspec.Struct):
    data: list[EventOut]


class _EventWire(msgspec.Struct):
    id: str
    session_id: int
    event_type: str
    sent_at: str
    received_at: str
    data: msgspec.Raw
    metadata: msgspec.Raw | None
    sequence: int


class _SessionWire(msgspec.Struct):
    id: int
    account_id: int
    user_id: int
    status: str
    external_conversation_id: str | None
    event_count: int
    inserted_at: str
    updated_at: str
    type: str | None
    agent: str | None
    environment: str | None
    state: msgspec.Raw | None


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def session_wire(session: Session) -> _SessionWire:
    return _SessionWire(
        id=session.number,
        account_id=session.account_id,
        user_id=session.user_id,
        status=session.status,
        external_conversation_id=session.external_conversation_id,
        event_count=session.event_count,
        inserted_at=rfc3339(session.created_on),
        updated_at=rfc3339(session.modified_on),
        type=session.type,
        agent=session.agent,
        environment=session.environment,
        state=None if session.state_json is None else msgspec.Raw(session.state_json.encode()),
    )


def event_wire(event: RecordedEvent) -> _EventWire:
    return _EventWire(
        id=str(event.event_id),
        session_id=event.session_id,
        event_type=event.event_type,
        sent_at=rfc3339(event.sent_at),
        received_at=rfc3339(event.received_at),
        data=msgspec.Raw(event.data_json.encode()),
        metadata=None if event.metadata_json is None else msgspec.Raw(event.metadata_json.encode()),
        sequence=event.sequence,
    )


_encoder = msgspec.json.Encoder()


def encode(payload: dict[str, Any]) -> bytes:
    return _encoder.encode(payload)
