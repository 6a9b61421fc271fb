"""Reading the session log for projections, a batch at a time, at the least cost per event.

Every projection reads every event of the log, and a rebuild reads it all again, so what reading
costs per event bounds how fast any read model can go. The library's mapper decodes a stored
event generically: a Python object hook for every JSON object of its state, then the class's
upcasters. Nearly every event of the log is a `Session.EventRecorded` at its current class
version, whose state has one fixed shape; msgspec decodes that shape in C, straight into the
values the library's transcoder would have made: UUIDs from `uuid_hex` (msgspec accepts only the
canonical spellings, which `UUID()` reads the same), datetimes from `datetime_iso` through the
same `datetime.fromisoformat`, and `data`/`metadata` as the very strings stored.

Anything else goes through the library's mapper, so that a read model always receives exactly
the event the library would have given it: a session's creation (one per session, nothing to
gain), an older class version (0.1.0's v1 needs its upcaster), a topic this module does not know
(an event class added later), a state that departs from the shape in any way (a missing or extra
field, a value of another type, a `changes` the library would transcode), a store whose events
are encrypted or compressed, or a transcoder other than the library's own.
`tests/unit/test_log_decoding.py` and `tests/integration/test_log_reader.py` hold both paths to
the mapper."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent, UUIDAsHex
from eventsourcing.utils import get_topic

from adapters.database.base import Database
from domain.session import Session

RECORDED = Session.EventRecorded
RECORDED_TOPIC = get_topic(RECORDED)
RECORDED_VERSION = 2
"""The class version whose stored shape `_RecordedState` describes."""
_KNOWN_ORIGINATORS = 100_000


class _Datetime(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """`{"_type_": "datetime_iso", "_data_": ...}`, as `DatetimeAsISO` writes a datetime."""

    kind: Literal["datetime_iso"] = msgspec.field(name="_type_")
    iso: str = msgspec.field(name="_data_")


class _UUID(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """`{"_type_": "uuid_hex", "_data_": ...}`, as `UUIDAsHex` writes a UUID."""

    kind: Literal["uuid_hex"] = msgspec.field(name="_type_")
    value: UUID = msgspec.field(name="_data_")


class _RecordedState(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The stored state of `Session.EventRecorded` version 2, every field required."""

    timestamp: _Datetime
    event_id: _UUID
    event_type: str
    sent_at: _Datetime
    data: str
    metadata: str | None
    sequence: int
    changes: dict[str, str | int | float | bool | None] | None
    class_version: Literal[2]  # RECORDED_VERSION


_decode_recorded_state = msgspec.json.Decoder(_RecordedState).decode


def decodes_like_the_library(mapper: Mapper[Any]) -> bool:
    """Whether stored states are plain JSON read by the library's own transcoder (or one that
    only writes differently, `adapters.eventstore.transcoder`) with its standard transcodings,
    and `EventRecorded` is still at the version `_RecordedState` describes."""
    transcoder = mapper.transcoder
    return (
        mapper.cipher is None
        and mapper.compressor is None
        and isinstance(transcoder, JSONTranscoder)
        and type(transcoder).decode is JSONTranscoder.decode
        and type(transcoder)._decode_obj is JSONTranscoder._decode_obj
        and type(transcoder.names.get("uuid_hex")) is UUIDAsHex
        and type(transcoder.names.get("datetime_iso")) is DatetimeAsISO
        and RECORDED.class_version == RECORDED_VERSION
    )


def decode_recorded(state: bytes, originator_id: UUID, originator_version: int) -> Any | None:
    """The `EventRecorded` the mapper would make of `state`, or None when it must decide."""
    try:
        decoded = _decode_recorded_state(state)
        changes = decoded.changes
        if changes is not None and "_type_" in changes:  # the transcoder would make it something else
            return None
        event_state = {
            "timestamp": datetime.fromisoformat(decoded.timestamp.iso),
            "event_id": decoded.event_id.value,
            "event_type": decoded.event_type,
            "sent_at": datetime.fromisoformat(decoded.sent_at.iso),
            "data": decoded.data,
            "metadata": decoded.metadata,
            "sequence": decoded.sequence,
            "changes": changes,
            "originator_id": originator_id,
            "originator_version": originator_version,
        }
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None
    event = object.__new__(RECORDED)
    object.__setattr__(event, "__dict__", event_state)
    return event


class LogReader:
    """Reads the log after a position, decoding each event as cheaply as is exact."""

    def __init__(self, mapper: Mapper[Any], database: Database) -> None:
        self._mapper = mapper
        self._db = database
        self._fast = decodes_like_the_library(mapper)
        self._originators: dict[Any, UUID] = {}
        self.decoded_by_mapper = 0
        """How many events went through the library's mapper (for tests)."""

    def read(self, after: int, limit: int) -> list[tuple[int, Any]]:
        """Up to `limit` events after position `after`, in log order, as (position, event)."""
        rows = self._db.log_rows_after(after, limit)
        return [self._decode(*row) for row in rows]

    def _decode(self, position: int, originator: Any, version: int, topic: str, state: bytes) -> tuple[int, Any]:
        originator_id = self._originator_id(originator)
        if self._fast and topic == RECORDED_TOPIC:
            event = decode_recorded(state, originator_id, version)
            if event is not None:
                return position, event
        self.decoded_by_mapper += 1
        return position, self._mapper.to_domain_event(StoredEvent(originator_id, version, topic, state))

    def _originator_id(self, stored: Any) -> UUID:
        """The session's aggregate id (PostgreSQL gives a UUID, SQLite its text), made once per session."""
        known = self._originators.get(stored)
        if known is None:
            if len(self._originators) > _KNOWN_ORIGINATORS:
                self._originators.clear()
            known = self._originators[stored] = stored if isinstance(stored, UUID) else UUID(stored)
        return known
