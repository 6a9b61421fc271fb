"""The closed set of activity event types an IDE client may record."""

from __future__ import annotations

import re
from enum import StrEnum


class EventType(StrEnum):
    CONVERSATION_STARTED = "conversation_started"
    CONVERSATION_MESSAGE_SENT = "conversation_message_sent"
    CONVERSATION_MESSAGE_RECEIVED = "conversation_message_received"
    CONVERSATION_ENDED = "conversation_ended"
    TOOL_CALLED = "tool_called"
    TOOL_RESULT = "tool_result"
    FILE_CREATED = "file_created"
    FILE_MODIFIED = "file_modified"
    FILE_DELETED = "file_deleted"
    COMMAND_STARTED = "command_started"
    COMMAND_OUTPUT = "command_output"
    COMMAND_COMPLETED = "command_completed"
    HOOK_TRIGGERED = "hook_triggered"
    HOOK_COMPLETED = "hook_completed"
    SESSION_STATUS_CHANGED = "session_status_changed"
    SESSION_PAUSED = "session_paused"
    SESSION_RESUMED = "session_resumed"
    ERROR_OCCURRED = "error_occurred"

    @classmethod
    def parse(cls, name: str) -> EventType | None:
        """Later clients of the original system send camelCase (`toolCalled`); both spellings
        name the same type, anything else names none."""
        if name in _BY_NAME:
            return _BY_NAME[name]
        return _BY_NAME.get(_CAMEL_BOUNDARY.sub("_", name).lower()) if name.isalnum() else None


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_BY_NAME: dict[str, EventType] = {member.value: member for member in EventType}
