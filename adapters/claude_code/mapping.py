"""A Claude Code hook payload -> the session-events events it stands for (docs/claude-code.md).

Pure apart from fresh random ids: no I/O, no clock (the spool stamps `sent_at` when it stores the
events, so that they are ordered as they were spooled).

Every hook gives one *primary* event whose `data` carries the conventional keys the service reads
(`tool_name`, `tool_use_id`, `success`, `new_status`, `message`, ...), `hook_event_name`, and the
whole hook payload under `payload`. Some hooks also give *derived* events (a Bash call as
`command_started`/`command_completed`, a Write as `file_created`/`file_modified`, the session's
status as it ends); they carry a few small keys and `source_event_id`, the primary event's id, but
not the payload again. A hook this module does not know is kept as `hook_triggered`.

Ids: a payload with a `tool_use_id` gives ids derived from the Claude Code session id, the hook
event name, the `tool_use_id` and the event type, so the same tool call hooked twice is recorded
once; any other payload gets fresh random ids, so two identical prompts are two events."""

from __future__ import annotations

import os

from domain.event_types import EventType

try:  # CPython's own SHA-1: loading OpenSSL for hashlib costs the hook 2 ms
    from _sha1 import sha1  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Pythons built without it
    from hashlib import sha1

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Fixed for ever: changing it would change every derived id and defeat de-duplication.
ID_NAMESPACE = bytes.fromhex("6f0c1f8e5b7a4f0e9d3c2a51c1c7e8b4")

SOURCE = "claude-code"

# Keys of a subagent's context, copied to every event of a hook fired inside a subagent.
_CONTEXT_KEYS = ("agent_id", "agent_type")

_FILE_WRITING_TOOLS = {"Edit": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}


class BadPayload(ValueError):
    """The input is not a hook payload we can attribute to a Claude Code session."""


class MappedEvent:
    """One event to spool: everything but `sent_at`, which the spool stamps."""

    __slots__ = ("data", "event_type", "id")

    def __init__(self, event_id: str, event_type: EventType, data: dict[str, Any]) -> None:
        self.id = event_id
        self.event_type = event_type
        self.data = data

    def __repr__(self) -> str:
        return f"MappedEvent({self.event_type.value}, {self.id})"


def conversation_id(payload: dict[str, Any]) -> str:
    """The Claude Code session id, which names the service session (`external_conversation_id`)."""
    session_id = payload.get("session_id")
    if not isinstance(session_id, str) or not session_id.strip():
        raise BadPayload("the hook payload has no session_id")
    return session_id


def conversation_started(payload: dict[str, Any]) -> MappedEvent:
    """The first event of every Claude Code session, whatever hook reveals it first.

    Its id depends on the session alone, so announcing the same session twice (a lost spool, a
    second machine) is harmless."""
    session_id = conversation_id(payload)
    data: dict[str, Any] = {"conversation_id": session_id, "source": SOURCE}
    for key in ("cwd", "transcript_path", "model", "permission_mode"):
        value = payload.get(key)
        if isinstance(value, str):
            data[key] = value
    if payload.get("hook_event_name") == "SessionStart" and isinstance(payload.get("source"), str):
        data["start_source"] = payload["source"]
    return MappedEvent(_derived_id(session_id, "conversation_started"), EventType.CONVERSATION_STARTED, data)


def map_payload(payload: object) -> list[MappedEvent]:
    """The events one hook payload stands for, primary event first."""
    if not isinstance(payload, dict):
        raise BadPayload(f"the hook payload is a JSON {type(payload).__name__}, not an object")
    session_id = conversation_id(payload)
    hook = payload.get("hook_event_name")
    hook_name = hook if isinstance(hook, str) and hook else None
    tool_use_id = payload.get("tool_use_id") if isinstance(payload.get("tool_use_id"), str) else None
    builder = _Builder(payload, session_id, hook_name, tool_use_id)
    handler = _HANDLERS.get(hook_name or "", _other_hook)
    handler(builder)
    return builder.events


class _Builder:
    """Accumulates one hook's events, giving each its id and the keys every event shares."""

    __slots__ = ("events", "hook_name", "payload", "primary_id", "session_id", "tool_use_id")

    def __init__(self, payload: dict[str, Any], session_id: str, hook_name: str | None, tool_use_id: str | None):
        self.payload = payload
        self.session_id = session_id
        self.hook_name = hook_name
        self.tool_use_id = tool_use_id
        self.events: list[MappedEvent] = []
        self.primary_id: str | None = None

    def _id(self, event_type: EventType) -> str:
        if self.tool_use_id is None:
            return random_uuid()
        return _derived_id(self.session_id, f"{self.hook_name}/{self.tool_use_id}/{event_type.value}")

    def _common(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.hook_name is not None:
            data["hook_event_name"] = self.hook_name
        for key in _CONTEXT_KEYS:
            if key in self.payload:
                data[key] = self.payload[key]
        return data

    def primary(self, event_type: EventType, **keys: Any) -> None:
        data = self._common()
        data.update({key: value for key, value in keys.items() if value is not None})
        data["payload"] = self.payload
        event = MappedEvent(self._id(event_type), event_type, data)
        self.primary_id = event.id
        self.events.append(event)

    def derived(self, event_type: EventType, **keys: Any) -> None:
        data = self._common()
        data.update({key: value for key, value in keys.items() if value is not None})
        data["source_event_id"] = self.primary_id
        self.events.append(MappedEvent(self._id(event_type), event_type, data))

    def text(self, key: str) -> str | None:
        value = self.payload.get(key)
        return value if isinstance(value, str) else None

    def tool_input(self) -> dict[str, Any]:
        value = self.payload.get("tool_input")
        return value if isinstance(value, dict) else {}

    def tool_response(self) -> dict[str, Any]:
        value = self.payload.get("tool_response")
        return value if isinstance(value, dict) else {}


def _derived_id(session_id: str, name: str) -> str:
    return name_based_uuid(ID_NAMESPACE, f"{session_id}/{name}")


# RFC 4122 version 4 and version 5 UUIDs, the same as the `uuid` module's, without importing it
# (it costs the hook several milliseconds at start-up).


def random_uuid() -> str:
    return _format_uuid(os.urandom(16), version=4)


def name_based_uuid(namespace: bytes, name: str) -> str:
    digest = sha1(namespace + name.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    return _format_uuid(digest[:16], version=5)


def _format_uuid(raw: bytes, *, version: int) -> str:
    octets = bytearray(raw)
    octets[6] = (octets[6] & 0x0F) | (version << 4)
    octets[8] = (octets[8] & 0x3F) | 0x80
    text = octets.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _session_start(event: _Builder) -> None:
    source = event.text("source")
    if source == "resume":
        event.primary(EventType.SESSION_RESUMED, source=source, model=event.text("model"))
        event.derived(EventType.SESSION_STATUS_CHANGED, new_status="active", reason="resume")
    else:
        event.primary(EventType.HOOK_TRIGGERED, source=source, model=event.text("model"))


def _user_prompt_submit(event: _Builder) -> None:
    event.primary(EventType.CONVERSATION_MESSAGE_SENT)


def _pre_tool_use(event: _Builder) -> None:
    tool_name = event.text("tool_name")
    event.primary(EventType.TOOL_CALLED, tool_name=tool_name, tool_use_id=event.tool_use_id)
    if tool_name == "Bash":
        tool_input = event.tool_input()
        event.derived(
            EventType.COMMAND_STARTED,
            command=_text(tool_input.get("command")),
            description=_text(tool_input.get("description")),
            run_in_background=True if tool_input.get("run_in_background") is True else None,
            tool_use_id=event.tool_use_id,
        )


def _post_tool_use(event: _Builder) -> None:
    tool_name = event.text("tool_name")
    event.primary(EventType.TOOL_RESULT, tool_name=tool_name, tool_use_id=event.tool_use_id, success=True)
    tool_input, tool_response = event.tool_input(), event.tool_response()
    if tool_name == "Bash":
        interrupted = tool_response.get("interrupted")
        event.derived(
            EventType.COMMAND_COMPLETED,
            command=_text(tool_input.get("command")),
            success=True,
            interrupted=interrupted if isinstance(interrupted, bool) else None,
            tool_use_id=event.tool_use_id,
        )
    elif tool_name == "Write":
        created = tool_response.get("type") == "create"
        event.derived(
            EventType.FILE_CREATED if created else EventType.FILE_MODIFIED,
            file_path=_text(tool_input.get("file_path")) or _text(tool_response.get("filePath")),
            tool_name=tool_name,
            tool_use_id=event.tool_use_id,
        )
    elif tool_name in _FILE_WRITING_TOOLS:
        event.derived(
            EventType.FILE_MODIFIED,
            file_path=_text(tool_input.get(_FILE_WRITING_TOOLS[tool_name])) or _text(tool_response.get("filePath")),
            tool_name=tool_name,
            tool_use_id=event.tool_use_id,
        )


def _post_tool_use_failure(event: _Builder) -> None:
    tool_name = event.text("tool_name")
    error = event.payload.get("error")
    interrupt = event.payload.get("is_interrupt")
    event.primary(
        EventType.TOOL_RESULT,
        tool_name=tool_name,
        tool_use_id=event.tool_use_id,
        success=False,
        error=_text(error),
        is_interrupt=interrupt if isinstance(interrupt, bool) else None,
    )
    if tool_name == "Bash":
        event.derived(
            EventType.COMMAND_COMPLETED,
            command=_text(event.tool_input().get("command")),
            success=False,
            error=_text(error),
            tool_use_id=event.tool_use_id,
        )


def _stop(event: _Builder) -> None:
    event.primary(EventType.CONVERSATION_MESSAGE_RECEIVED, message=event.text("last_assistant_message"))


def _stop_failure(event: _Builder) -> None:
    error = event.payload.get("error")
    message = _text(error) or _text(event.payload.get("error_details")) or "the turn ended with an API error"
    event.primary(EventType.ERROR_OCCURRED, message=message)


def _session_end(event: _Builder) -> None:
    reason = event.text("reason")
    event.primary(EventType.CONVERSATION_ENDED, reason=reason)
    event.derived(EventType.SESSION_STATUS_CHANGED, new_status="complete", reason=reason)


def _tool_hook(event: _Builder) -> None:
    """Permission hooks: kept with the tool they concern, for anyone auditing permissions."""
    event.primary(EventType.HOOK_TRIGGERED, tool_name=event.text("tool_name"), tool_use_id=event.tool_use_id)


def _notification(event: _Builder) -> None:
    event.primary(
        EventType.HOOK_TRIGGERED,
        message=event.text("message"),
        notification_type=event.text("notification_type"),
    )


def _other_hook(event: _Builder) -> None:
    """SubagentStart/Stop, PreCompact and any hook Claude Code adds later: kept, never dropped."""
    event.primary(EventType.HOOK_TRIGGERED)


_HANDLERS = {
    "SessionStart": _session_start,
    "UserPromptSubmit": _user_prompt_submit,
    "PreToolUse": _pre_tool_use,
    "PostToolUse": _post_tool_use,
    "PostToolUseFailure": _post_tool_use_failure,
    "PermissionRequest": _tool_hook,
    "PermissionDenied": _tool_hook,
    "Notification": _notification,
    "Stop": _stop,
    "StopFailure": _stop_failure,
    "SessionEnd": _session_end,
}
