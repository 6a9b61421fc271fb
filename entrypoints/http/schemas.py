"""What the API takes and gives, as msgspec Structs: each shape is declared once, and the same
declaration is used to encode answers and to write the OpenAPI document.

Event `data`/`metadata` and session `state` are embedded as the stored JSON text (`msgspec.Raw`),
so a client gets back exactly what it sent (ADR 0006). A `Raw` field has no shape of its own, so
it carries its documented schema with it (`JSONObject`, `NullableJSONObject`); Litestar reads the
`extra` key of `extra_json_schema` as overrides of the generated schema.

The request Structs (`NewSession`, `NewEvent`, `EventBatch`) only document the bodies: the bodies
themselves are decoded field by field by `bodies` and `application.validation`, which keep `data`
to the byte and name every bad field in the contract's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import MediaType, Response

from application.queries import RecordedEvent
from application.validation import MAX_LABEL_LENGTH
from domain.event_types import EventType
from domain.session import Session as SessionAggregate
from domain.status import SessionStatus
from entrypoints.http.bodies import MAX_BATCH

EVENT_TYPES = tuple(member.value for member in EventType)
SESSION_STATUSES = tuple(member.value for member in SessionStatus)
EVENT_TYPE_HINT = f"one of: {', '.join(EVENT_TYPES)} (camelCase such as toolCalled is accepted too)"

_JSON_OBJECT = {"type": "object", "additionalProperties": True}

JSONObject = Annotated[
    msgspec.Raw,
    msgspec.Meta(description="A JSON object, exactly as sent.", extra_json_schema={"extra": _JSON_OBJECT}),
]
NullableJSONObject = Annotated[
    msgspec.Raw | None,
    msgspec.Meta(
        description="A JSON object exactly as sent, or null.",
        extra_json_schema={"extra": {"oneOf": [_JSON_OBJECT, {"type": "null"}]}},
    ),
]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        description="RFC 3339, UTC, microseconds.",
        extra_json_schema={"extra": {"format": "date-time"}},
    ),
]


# --- answers ---------------------------------------------------------------------------------


class Session(msgspec.Struct):
    """A session, as every answer shows it."""

    id: int
    account_id: int
    user_id: int
    status: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"enum": list(SESSION_STATUSES)}})]
    external_conversation_id: str | None
    event_count: Annotated[int, msgspec.Meta(description="How many events the session has recorded.")]
    inserted_at: Timestamp
    updated_at: Timestamp
    type: str | None
    agent: str | None
    environment: str | None
    state: NullableJSONObject


class Event(msgspec.Struct):
    """A recorded event, with `data` exactly as the client sent it."""

    id: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"format": "uuid"}})]
    session_id: int
    event_type: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"enum": list(EVENT_TYPES)}})]
    sent_at: Timestamp
    received_at: Timestamp
    data: JSONObject
    metadata: NullableJSONObject
    sequence: Annotated[int, msgspec.Meta(description="The event's 1-based position in its session.")]


class SessionEnvelope(msgspec.Struct):
    data: Session


class SessionsEnvelope(msgspec.Struct):
    data: list[Session]


class BatchRecorded(msgspec.Struct):
    data: Session
    event_count: Annotated[int, msgspec.Meta(description="How many events this call newly recorded.")]


class EventsEnvelope(msgspec.Struct):
    data: list[Event]


class Health(msgspec.Struct):
    status: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"enum": ["ok"]}})]
    store: Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"enum": ["sqlite", "postgres"]}})]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def session_out(session: SessionAggregate) -> Session:
    return Session(
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


def event_out(event: RecordedEvent) -> Event:
    return Event(
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


def encode(payload: msgspec.Struct) -> bytes:
    return _encoder.encode(payload)


def answer(body: msgspec.Struct, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    """A JSON answer encoded here rather than by Litestar, so that `Raw` fields go out as stored."""
    return Response(encode(body), status_code=status_code, media_type=MediaType.JSON, headers=headers)


# --- requests (documentation only: see the module docstring) ---------------------------------

_Label = Annotated[str, msgspec.Meta(max_length=MAX_LABEL_LENGTH)]


class NewSession(msgspec.Struct):
    """Every field is optional: `{}` (or no body at all) creates a bare session."""

    type: _Label | None = None
    agent: _Label | None = None
    environment: _Label | None = None
    state: Annotated[
        dict[str, Any] | None, msgspec.Meta(description="Any JSON object, kept and returned exactly as sent.")
    ] = None


class NewEvent(msgspec.Struct):
    """One event. Unknown fields are ignored."""

    event_type: Annotated[
        EventType,
        msgspec.Meta(description="One of the 18 event types; camelCase (`toolCalled`) is accepted too."),
    ]
    sent_at: Annotated[
        datetime,
        msgspec.Meta(
            description="RFC 3339 date-time; without an offset it is taken as UTC. `timestamp` is accepted "
            "as an alias of `sent_at`."
        ),
    ]
    data: Annotated[
        dict[str, Any],
        msgspec.Meta(
            description="Any JSON object (`{}` allowed), stored and returned exactly as sent. Keys that some "
            "features read: `tool_called`/`tool_result`: `tool_name`, `tool_use_id`, `success`; "
            "`conversation_started`: `conversation_id`; `session_status_changed`: `new_status`, one of "
            f"{', '.join(SESSION_STATUSES)} (any other value is stored, logged and ignored: the status does not "
            "change); `error_occurred`: `message`."
        ),
    ]
    metadata: Annotated[dict[str, Any] | None, msgspec.Meta(description="Any JSON object.")] = None
    id: Annotated[
        UUID | None,
        msgspec.Meta(
            description="A client-chosen id: an event whose id the session already recorded is recorded once "
            "(safe retries)."
        ),
    ] = None
    session_id: Annotated[int | None, msgspec.Meta(description="If present, must equal the path's id.")] = None


class EventBatch(msgspec.Struct):
    """All or nothing: if any event is invalid, nothing is stored."""

    events: Annotated[list[NewEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]
