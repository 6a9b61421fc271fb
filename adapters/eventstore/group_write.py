"""One group of sessions' new events, as the rows one transaction writes (`GroupRows`), and
what the transaction did with each session (`GroupWritten`).

Alongside the stored events the transaction writes, for each session (tables described in
`adapters.database.schema`): its `session_directory` row when it is new (and its conversation
once linked), `session_event_ids` (idempotent appends) and one `session_feed` notification per
recording call, at the log position of the call's last event (the notification outbox). A
session whose copy was out of date (another writer saved it since: a version already stored)
or that is gone from `session_directory` (erased), or that has already recorded one of the
client-chosen ids it was given to check, is left out whole; the others are written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from application.notifications import SESSION_EVENTS, SESSION_UPDATED, Announcement
from application.recording import SessionChanges
from domain.session import Session


@dataclass(frozen=True)
class DirectoryEntry:
    number: int
    session_uuid: UUID
    account_id: int
    user_id: int
    created_at: datetime


@dataclass(frozen=True)
class FeedRow:
    """A notification, at the log position the stored event (`session_uuid`, `version`) gets."""

    session_uuid: UUID
    version: int
    kind: str
    session_id: int
    account_id: int
    user_id: int
    payload: str


@dataclass
class GroupRows:
    stored: list[StoredEvent] = field(default_factory=list)
    """Every new stored event, session after session, each session's in version order."""
    numbers: list[int] = field(default_factory=list)
    """The session number of each stored event."""
    event_ids: list[UUID | None] = field(default_factory=list)
    """The recorded event's id of each stored event (None: the session's creation)."""
    recorded: list[Session.EventRecorded | None] = field(default_factory=list)
    """The recorded event of each stored event (None: the session's creation): what the
    `session_events` read model holds of it, written by the same transaction when it can be."""
    directory: list[DirectoryEntry] = field(default_factory=list)
    links: list[tuple[int, UUID, str]] = field(default_factory=list)
    """(number, session uuid, conversation id) of sessions the group links to a conversation."""
    feed: list[FeedRow] = field(default_factory=list)
    numbers_by_uuid: dict[UUID, int] = field(default_factory=dict)
    unverified: list[tuple[UUID, int, UUID]] = field(default_factory=list)
    """(session uuid, number, event id) of client-chosen ids to look up under the lock: a session
    that has recorded one is left out (a conflict)."""

    @property
    def state_bytes(self) -> int:
        return sum(len(s.state) for s in self.stored)


@dataclass(frozen=True)
class GroupWritten:
    saved: dict[UUID, int]
    """Each written session's last log position."""
    conflicted: set[UUID]
    gone: set[UUID]
    projected: bool = False
    """Whether the same transaction wrote the events into `session_events` and moved that
    projection on (it does when the projection had caught up with the log)."""


def group_rows(changes: Sequence[SessionChanges], mapper: Mapper[Any]) -> GroupRows:
    """The rows of `changes`, collecting each session's pending events."""
    rows = GroupRows()
    for change in changes:
        session = change.session
        rows.numbers_by_uuid[session.id] = session.number
        rows.unverified += [(session.id, session.number, event_id) for event_id in change.unverified_ids]
        for event in session.collect_events():
            rows.stored.append(mapper.to_stored_event(event))
            rows.numbers.append(session.number)
            if isinstance(event, Session.EventRecorded):
                rows.event_ids.append(event.event_id)
                rows.recorded.append(event)
            else:
                rows.event_ids.append(None)
                rows.recorded.append(None)
                if event.originator_version == 1:
                    rows.directory.append(
                        DirectoryEntry(session.number, session.id, session.account_id, session.user_id, event.timestamp)
                    )
        link: str | None = None
        for announced in change.announced:
            rows.feed += _feed(session.id, announced.last_version, announced.announcement)
            linked = conversation_update(announced.announcement)
            if linked is not None:
                link = linked[0]
        if link is not None:
            rows.links.append((session.number, session.id, link))
    return rows


def feed_rows(announcement: Announcement) -> list[tuple[str, int, int, int, str]]:
    """The notification-feed rows announcing one call: (kind, session, account, user, payload)."""
    if announcement.event_count == 0:
        return []
    owner = (announcement.session_id, announcement.account_id, announcement.user_id)
    rows = [
        (
            SESSION_EVENTS,
            *owner,
            json.dumps({"session_id": announcement.session_id, "event_count": announcement.event_count}),
        )
    ]
    if announcement.session_update is not None:
        payload = {"session_id": announcement.session_id, **announcement.session_update}
        rows.append((SESSION_UPDATED, *owner, json.dumps(payload)))
    return rows


def conversation_update(announcement: Announcement) -> tuple[str, int] | None:
    """(conversation id, session number) when the call linked the session to a conversation, so
    that `session_directory` can find sessions by conversation."""
    if announcement.session_update is None:
        return None
    conversation_id = announcement.session_update.get("external_conversation_id")
    return (str(conversation_id), announcement.session_id) if conversation_id is not None else None


def _feed(session_uuid: UUID, version: int, announcement: Announcement) -> list[FeedRow]:
    return [FeedRow(session_uuid, version, *row) for row in feed_rows(announcement)]
