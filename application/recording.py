"""What recording events hands to the store, and what the store and the caller get back.

A recording call is decided on the session as this process holds it and saved with other calls
in one transaction (see `application.group_commit`); these types are the vocabulary between the
use case and the `SessionStore` port."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from uuid import UUID

from application.notifications import Announcement
from domain.session import Session


@dataclass(frozen=True)
class EventsHandled:
    """A recording call's answer: the session as the call's events left it (later calls of the
    same group do not show in it), and how many were new (events whose id the session had already
    recorded are not counted)."""

    session: Session
    new_event_count: int


@dataclass(frozen=True)
class CallAnnounced:
    """One call's announcement, and the session version of the last event it recorded: the
    notification takes that event's log position, so each call of a group has its own."""

    announcement: Announcement
    last_version: int


@dataclass(frozen=True)
class SessionChanges:
    """A session with new (pending) events to save, and what each call that recorded them announces."""

    session: Session
    announced: Sequence[CallAnnounced] = ()
    unverified_ids: frozenset[UUID] = frozenset()
    """Client-chosen ids of the pending events that were not looked up before deciding: the save
    looks them up itself, and if the session has recorded one, the session is not saved (a
    `CONFLICT`: decide again, knowing which)."""


class SaveOutcome(Enum):
    SAVED = "saved"
    CONFLICT = "conflict"
    """Another writer saved the session since this copy of it was loaded, or it has already
    recorded one of its `unverified_ids`: nothing of it was saved; decide its calls again on the
    session as stored now."""
    GONE = "gone"
    """The session no longer exists (it was erased): nothing of it was saved."""
