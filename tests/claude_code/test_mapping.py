"""The hook payload -> events table of docs/claude-code.md, hook by hook."""

from __future__ import annotations

import uuid

import pytest

from adapters.claude_code.mapping import (
    ID_NAMESPACE,
    BadPayload,
    conversation_started,
    map_payload,
    name_based_uuid,
    random_uuid,
)
from domain.event_types import EventType
from tests.claude_code import payloads as p

SID = "9f1c2b3a-4d5e-4f60-8a7b-1c2d3e4f5a6b"


def types(payload: dict) -> list[str]:
    return [event.event_type.value for event in map_payload(payload)]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (p.session_start(SID), ["hook_triggered"]),
        (p.session_start(SID, source="resume"), ["session_resumed", "session_status_changed"]),
        (p.user_prompt(SID, "hello"), ["conversation_message_sent"]),
        (p.pre_tool(SID, "Read", {"file_path": "/a"}, "t1"), ["tool_called"]),
        (p.pre_tool(SID, "Bash", {"command": "ls"}, "t1"), ["tool_called", "command_started"]),
        (p.post_tool(SID, "Read", {"file_path": "/a"}, {"type": "text"}, "t1"), ["tool_result"]),
        (p.post_tool(SID, "Bash", {"command": "ls"}, {"stdout": ""}, "t1"), ["tool_result", "command_completed"]),
        (p.post_tool(SID, "Write", {"file_path": "/a"}, {"type": "create"}, "t1"), ["tool_result", "file_created"]),
        (p.post_tool(SID, "Write", {"file_path": "/a"}, {"type": "update"}, "t1"), ["tool_result", "file_modified"]),
        (p.post_tool(SID, "Edit", {"file_path": "/a"}, {}, "t1"), ["tool_result", "file_modified"]),
        (p.post_tool(SID, "MultiEdit", {"file_path": "/a"}, {}, "t1"), ["tool_result", "file_modified"]),
        (p.post_tool(SID, "NotebookEdit", {"notebook_path": "/a.ipynb"}, {}, "t1"), ["tool_result", "file_modified"]),
        (p.post_tool_failure(SID, "Read", {"file_path": "/a"}, "t1", "ENOENT"), ["tool_result"]),
        (p.post_tool_failure(SID, "Bash", {"command": "x"}, "t1", "exit 1"), ["tool_result", "command_completed"]),
        (p.permission_request(SID, "Bash", {"command": "ls"}), ["hook_triggered"]),
        (p.notification(SID), ["hook_triggered"]),
        (p.subagent_start(SID, "a1"), ["hook_triggered"]),
        (p.subagent_stop(SID, "a1"), ["hook_triggered"]),
        (p.stop(SID), ["conversation_message_received"]),
        (p.common(SID, "StopFailure", error="rate_limit"), ["error_occurred"]),
        (p.pre_compact(SID), ["hook_triggered"]),
        (p.session_end(SID), ["conversation_ended", "session_status_changed"]),
        (p.future_hook(SID), ["hook_triggered"]),
    ],
)
def test_every_hook_maps_to_known_event_types(payload: dict, expected: list[str]) -> None:
    assert types(payload) == expected
    assert all(EventType.parse(name) is not None for name in expected)


def test_the_primary_event_keeps_the_whole_payload_and_the_conventional_keys() -> None:
    payload = p.post_tool(SID, "Read", {"file_path": "/a"}, {"type": "text", "file": {"content": "x"}}, "toolu_1")
    primary = map_payload(payload)[0]
    assert primary.data["payload"] == payload
    assert primary.data["tool_name"] == "Read"
    assert primary.data["tool_use_id"] == "toolu_1"
    assert primary.data["success"] is True
    assert primary.data["hook_event_name"] == "PostToolUse"


def test_a_failed_tool_call_is_a_tool_result_with_success_false_and_the_error() -> None:
    primary, derived = map_payload(p.post_tool_failure(SID, "Bash", {"command": "false"}, "t9", "exit code 1"))
    assert (primary.data["success"], primary.data["error"], primary.data["tool_use_id"]) == (False, "exit code 1", "t9")
    assert derived.data == {
        "hook_event_name": "PostToolUseFailure",
        "command": "false",
        "success": False,
        "error": "exit code 1",
        "tool_use_id": "t9",
        "source_event_id": primary.id,
    }


def test_derived_events_point_at_their_primary_event_and_do_not_repeat_the_payload() -> None:
    primary, started = map_payload(p.pre_tool(SID, "Bash", {"command": "pytest", "description": "tests"}, "t1"))
    assert started.data == {
        "hook_event_name": "PreToolUse",
        "command": "pytest",
        "description": "tests",
        "tool_use_id": "t1",
        "source_event_id": primary.id,
    }
    _, created = map_payload(p.post_tool(SID, "Write", {"file_path": "/src/a.py"}, {"type": "create"}, "t2"))
    assert created.data["file_path"] == "/src/a.py"
    assert "payload" not in created.data


def test_session_end_completes_the_session_and_resume_reactivates_it() -> None:
    ended, status = map_payload(p.session_end(SID, reason="logout"))
    assert ended.data["reason"] == "logout"
    assert status.data["new_status"] == "complete"
    _resumed, status = map_payload(p.session_start(SID, source="resume"))
    assert status.data["new_status"] == "active"


def test_stop_failure_is_an_error_with_a_message() -> None:
    (event,) = map_payload(p.common(SID, "StopFailure", error="rate_limit"))
    assert event.data["message"] == "rate_limit"
    (event,) = map_payload(p.common(SID, "StopFailure"))
    assert event.data["message"]


def test_subagent_context_is_copied_to_every_event() -> None:
    payload = p.pre_tool(SID, "Bash", {"command": "ls"}, "t1", agent_id="a-7", agent_type="")
    for event in map_payload(payload):
        assert (event.data["agent_id"], event.data["agent_type"]) == ("a-7", "")


def test_an_unknown_future_hook_is_kept_with_its_name_and_payload() -> None:
    (event,) = map_payload(p.future_hook(SID))
    assert event.event_type is EventType.HOOK_TRIGGERED
    assert event.data["hook_event_name"] == "PostToolBatch"
    assert event.data["payload"]["batch_id"] == "b-1"


def test_the_same_tool_call_hooked_twice_gets_the_same_ids() -> None:
    first = map_payload(p.post_tool(SID, "Bash", {"command": "ls"}, {"stdout": "a"}, "toolu_42"))
    again = map_payload(p.post_tool(SID, "Bash", {"command": "ls"}, {"stdout": "a"}, "toolu_42"))
    assert [e.id for e in first] == [e.id for e in again]
    assert len({e.id for e in first}) == 2  # tool_result and command_completed differ


def test_ids_depend_on_session_hook_and_tool_use_id() -> None:
    def ids(payload: dict) -> list[str]:
        return [event.id for event in map_payload(payload)]

    base = ids(p.pre_tool(SID, "Read", {}, "toolu_1"))
    assert base != ids(p.pre_tool(SID, "Read", {}, "toolu_2"))
    assert base != ids(p.pre_tool("another-session", "Read", {}, "toolu_1"))
    assert base != ids(p.post_tool(SID, "Read", {}, {}, "toolu_1"))


def test_payloads_without_tool_use_id_get_fresh_ids_every_time() -> None:
    older = p.pre_tool(SID, "Grep", {"pattern": "x"}, None)
    assert "tool_use_id" not in older and "permission_mode" not in older
    first, again = map_payload(older), map_payload(older)
    assert first[0].id != again[0].id
    assert "tool_use_id" not in first[0].data
    prompt = p.user_prompt(SID, "same words")
    assert map_payload(prompt)[0].id != map_payload(prompt)[0].id


def test_conversation_started_names_the_claude_code_session_with_a_stable_id() -> None:
    started = conversation_started(p.session_start(SID))
    assert started.event_type is EventType.CONVERSATION_STARTED
    assert started.data["conversation_id"] == SID
    assert started.data["start_source"] == "startup"
    assert started.id == conversation_started(p.user_prompt(SID, "x")).id


@pytest.mark.parametrize(
    "payload",
    [[1, 2], "text", 42, None, {}, {"hook_event_name": "Stop"}, {"session_id": ""}, {"session_id": 7}],
)
def test_payloads_that_name_no_session_are_refused(payload: object) -> None:
    with pytest.raises(BadPayload):
        map_payload(payload)


def test_a_payload_missing_its_own_fields_is_still_recorded() -> None:
    (event,) = map_payload({"session_id": SID})
    assert event.event_type is EventType.HOOK_TRIGGERED
    (called,) = map_payload({"session_id": SID, "hook_event_name": "PreToolUse", "tool_input": "not an object"})
    assert called.event_type is EventType.TOOL_CALLED and "tool_name" not in called.data
    result, modified = map_payload({"session_id": SID, "hook_event_name": "PostToolUse", "tool_name": "Write"})
    assert result.data["success"] is True
    assert modified.event_type is EventType.FILE_MODIFIED and "file_path" not in modified.data


def test_ids_are_the_rfc_4122_uuids_of_the_uuid_module() -> None:
    assert name_based_uuid(ID_NAMESPACE, "s/x") == str(uuid.uuid5(uuid.UUID(bytes=ID_NAMESPACE), "s/x"))
    fresh = uuid.UUID(random_uuid())
    assert (fresh.version, fresh.variant) == (4, uuid.RFC_4122)
