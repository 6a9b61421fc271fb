"""Request bodies, decoded with msgspec into raw JSON fields so that validation can name every
bad field (and batch index) in the contract's words, and `data` is kept to the byte."""

from __future__ import annotations

import msgspec

from application.errors import EventRejected
from application.validation import INVALID, RawFields

MAX_BATCH = 1000

_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_array = msgspec.json.Decoder(list[msgspec.Raw])


class MalformedBody(Exception):
    """The body is not JSON, or not a JSON object."""


def _fields(raw: dict[str, msgspec.Raw]) -> RawFields:
    return {name: bytes(value) for name, value in raw.items()}


def json_object(body: bytes) -> RawFields:
    if not body.strip():
        return {}
    try:
        body.decode("utf-8")  # msgspec keeps raw fields undecoded: check the text once, here
    except UnicodeDecodeError as error:
        raise MalformedBody(f"the body is not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        return _fields(_object.decode(body))
    except msgspec.DecodeError as error:
        raise MalformedBody(_describe(error)) from None
    except RecursionError:
        raise MalformedBody("the body is nested too deeply") from None


def event_batch(body: bytes) -> list[RawFields]:
    envelope = json_object(body)
    raw_events = envelope.get("events")
    if raw_events is None or raw_events.strip() in (b"null", "null"):
        raise EventRejected({"events": ["can't be blank"]})
    try:
        items = _array.decode(raw_events)
    except (msgspec.DecodeError, RecursionError):
        raise EventRejected({"events": [INVALID]}) from None
    if not 1 <= len(items) <= MAX_BATCH:
        raise EventRejected({"events": [f"must hold between 1 and {MAX_BATCH} events"]})
    batch = []
    for index, item in enumerate(items):
        try:
            batch.append(_fields(_object.decode(item)))
        except (msgspec.DecodeError, RecursionError):
            raise EventRejected({"event": ["must be a JSON object"]}, index=index) from None
    return batch


def _describe(error: msgspec.DecodeError) -> str:
    message = str(error)
    if message.startswith("Expected `object`"):
        return "the body must be a JSON object"
    return f"malformed JSON: {message}"
