"""Read-side shapes: what the read model answers, and how callers ask for events."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from application.errors import InvalidQuery
from domain.event_types import EventType

MAX_PAGE = 1000
DEFAULT_EVENT_PAGE = 100
DEFAULT_SESSION_PAGE = 50
MAX_OFFSET = 2**62
"""Offsets beyond this are refused: stores count rows in signed 64-bit integers."""


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True)
class EventQuery:
    """Events of one session, ordered by `sent_at` then by the order the session recorded them,
    so that pages never repeat or skip an event and `desc` is the exact reverse of `asc`."""

    event_type: EventType | None = None
    limit: int = DEFAULT_EVENT_PAGE
    offset: int = 0
    order: Order = Order.ASC

    @classmethod
    def parse(
        cls,
        event_type: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        order: str | None = None,
    ) -> EventQuery:
        errors: dict[str, list[str]] = {}
        parsed_type = None
        if event_type is not None and event_type != "":
            parsed_type = EventType.parse(event_type)
            if parsed_type is None:
                errors["event_type"] = ["is invalid"]
        limit, offset = _page_bounds(limit, offset, DEFAULT_EVENT_PAGE, errors)
        parsed_order = Order.ASC
        if order is not None and order != "":
            try:
                parsed_order = Order(order.lower())
            except ValueError:
                errors["order"] = ["must be asc or desc"]
        if errors:
            raise InvalidQuery(errors)
        return cls(parsed_type, limit, offset, parsed_order)


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_SESSION_PAGE
    offset: int = 0

    @classmethod
    def parse(cls, limit: int | None = None, offset: int | None = None) -> Page:
        errors: dict[str, list[str]] = {}
        limit, offset = _page_bounds(limit, offset, DEFAULT_SESSION_PAGE, errors)
        if errors:
            raise InvalidQuery(errors)
        return cls(limit, offset)


def _page_bounds(
    limit: int | None, offset: int | None, default_limit: int, errors: dict[str, list[str]]
) -> tuple[int, int]:
    """Defaults and range checks shared by every paged query; problems are added to `errors`."""
    limit = default_limit if limit is None else limit
    if not 1 <= limit <= MAX_PAGE:
        errors["limit"] = [f"must be between 1 and {MAX_PAGE}"]
    offset = 0 if offset is None else offset
    if not 0 <= offset <= MAX_OFFSET:
        errors["offset"] = [f"must be between 0 and {MAX_OFFSET}"]
    return limit, offset


@dataclass(frozen=True)
class RecordedEvent:
    """An event as the read model holds it; `data_json` is the client's JSON text, unchanged."""

    event_id: UUID
    session_id: int
    sequence: int
    event_type: str
    sent_at: datetime
    received_at: datetime
    data_json: str
    metadata_json: str | None


@dataclass
class ToolStats:
    """One tool's calls in a session: `completed` calls got their result, `failures` of them with
    `success: false`; `total_duration_ms` adds each completed call's result time minus call time."""

    calls: int = 0
    completed: int = 0
    failures: int = 0
    total_duration_ms: float = 0.0

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass
class SessionStats:
    """What a session's events add up to (the `session_stats` read model)."""

    session_id: int
    event_count: int = 0
    first_sent_at: datetime | None = None
    last_sent_at: datetime | None = None
    by_type: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    tools: dict[str, ToolStats] = field(default_factory=dict)
