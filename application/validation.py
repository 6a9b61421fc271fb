"""Validation of the event wrapper a client sends (never of the contents of `data`).

Fields arrive as JSON texts (`RawFields`), so that `data` and `metadata` are kept exactly as
sent, to the byte, while the small wrapper fields are decoded here. Messages follow the original
system: `can't be blank` for missing or null, `is invalid` for anything of the wrong kind."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

from application.errors import EventRejected
from domain.event_types import EventType
from domain.session import NewEvent

RawFields = Mapping[str, str | bytes]
"""An event object as its fields' JSON texts, e.g. {"event_type": '"tool_called"', "data": '{}'}."""

BLANK = "can't be blank"
INVALID = "is invalid"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


def parse_event(fields: RawFields, session_id: int) -> NewEvent:
    """Builds the event, or raises `EventRejected` with every invalid field named."""
    errors: dict[str, list[str]] = {}

    event_type = _required_string(fields, "event_type", errors)
    parsed_type = EventType.parse(event_type) if event_type is not None else None
    if event_type is not None and parsed_type is None:
        errors["event_type"] = [INVALID]

    time_field = "sent_at" if _present(fields, "sent_at") or not _present(fields, "timestamp") else "timestamp"
    sent_at_text = _required_string(fields, time_field, errors)
    sent_at = _parse_time(sent_at_text) if sent_at_text is not None else None
    if sent_at_text is not None and sent_at is None:
        errors[time_field] = [INVALID]

    data_json = _object_text(fields, "data", errors, required=True)
    metadata_json = _object_text(fields, "metadata", errors, required=False)
    event_id = _event_id(fields, errors)
    _check_session_id(fields, session_id, errors)

    if errors:
        raise EventRejected(errors)
    assert parsed_type is not None and sent_at is not None and data_json is not None  # noqa: S101 (no errors: all parsed)
    return NewEvent(
        event_id=event_id or uuid4(),
        id_from_client=event_id is not None,
        event_type=parsed_type,
        sent_at=sent_at,
        data_json=data_json,
        metadata_json=metadata_json,
    )


def parse_events(batch: list[RawFields], session_id: int) -> list[NewEvent]:
    """All or nothing: the first invalid event rejects the batch, reporting its index."""
    events = []
    for index, fields in enumerate(batch):
        try:
            events.append(parse_event(fields, session_id))
        except EventRejected as rejected:
            raise EventRejected(rejected.errors, index=index) from None
    return events


def _text(raw: str | bytes) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


_UNDECODABLE = object()
"""A value Python's JSON reader refuses (an integer of thousands of digits, deep nesting)."""


_NOT_PLAIN_BYTES = re.compile(rb'[\x00-\x1f"\\]')
_NOT_PLAIN_TEXT = re.compile(r'[\x00-\x1f"\\]')


def _decoded(fields: RawFields, name: str) -> object:
    raw = fields.get(name)
    if raw is None:
        return None
    plain = _plain_string(raw)
    if plain is not None:
        return plain
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _UNDECODABLE


def _plain_string(raw: str | bytes) -> str | None:
    """The value of a JSON string with nothing escaped in it (`"tool_called"`, a date, a UUID):
    its characters between the quotes, read without the JSON reader (the wrapper's fields are
    almost always such strings, and reading them was most of a batch's validation). None for
    anything else, which `json.loads` reads."""
    if len(raw) < 2:
        return None
    if isinstance(raw, bytes):
        if raw[0] != 0x22 or raw[-1] != 0x22 or _NOT_PLAIN_BYTES.search(raw, 1, len(raw) - 1):
            return None
        try:
            return raw[1:-1].decode()
        except UnicodeDecodeError:
            return None
    if raw[0] != '"' or raw[-1] != '"' or _NOT_PLAIN_TEXT.search(raw, 1, len(raw) - 1):
        return None
    return raw[1:-1]


def _present(fields: RawFields, name: str) -> bool:
    raw = fields.get(name)
    return raw is not None and _text(raw).strip() != "null"


def _required_string(fields: RawFields, name: str, errors: dict[str, list[str]]) -> str | None:
    value = _decoded(fields, name)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[name] = [BLANK]
        return None
    if not isinstance(value, str):
        errors[name] = [INVALID]
        return None
    return value


def parse_rfc3339(text: str) -> datetime | None:
    """An RFC 3339 date-time in UTC, read as `sent_at` is (no offset means UTC); None if it is not one."""
    return _parse_time(text)


def _parse_time(text: str) -> datetime | None:
    if not _RFC3339.fullmatch(text):
        return None
    try:
        # Since Python 3.11 this takes any separator and 1 to 9 fractional digits, keeping
        # microseconds (finer digits are dropped, not refused); `z` must be upper case.
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


def _object_text(fields: RawFields, name: str, errors: dict[str, list[str]], *, required: bool) -> str | None:
    raw = fields.get(name)
    text = None if raw is None else _text(raw).strip()
    if text is None or text == "null":
        if required:
            errors[name] = [BLANK]
        return None
    if not text.startswith("{"):
        errors[name] = [INVALID]
        return None
    return text


_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _event_id(fields: RawFields, errors: dict[str, list[str]]) -> UUID | None:
    value = _decoded(fields, "id")
    if value is None:
        return None
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return UUID(value)
    errors["id"] = [INVALID]
    return None


def _check_session_id(fields: RawFields, session_id: int, errors: dict[str, list[str]]) -> None:
    value = _decoded(fields, "session_id")
    if value is None:
        return
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or value != session_id:
        errors["session_id"] = [INVALID]


MAX_LABEL_LENGTH = 1000
MAX_STATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SessionFields:
    """What a client may say about a session it creates; `state_json` is its JSON text, unchanged."""

    type: str | None = None
    agent: str | None = None
    environment: str | None = None
    state_json: str | None = None


def parse_session_fields(fields: RawFields) -> SessionFields:
    errors: dict[str, list[str]] = {}
    labels: dict[str, str | None] = {}
    for name in ("type", "agent", "environment"):
        value = _decoded(fields, name)
        if value is not None and not isinstance(value, str):
            errors[name] = [INVALID]
        elif isinstance(value, str) and len(value) > MAX_LABEL_LENGTH:
            errors[name] = [f"should be at most {MAX_LABEL_LENGTH} characters"]
        labels[name] = value if isinstance(value, str) else None
    state_json = _object_text(fields, "state", errors, required=False)
    if state_json is not None and len(state_json) > MAX_STATE_BYTES:
        errors["state"] = [f"should be at most {MAX_STATE_BYTES} bytes"]
    if errors:
        raise EventRejected(errors)
    return SessionFields(labels["type"], labels["agent"], labels["environment"], state_json)
