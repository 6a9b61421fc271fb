"""Hook payloads shaped exactly as Claude Code writes them on a command hook's standard input.

Written from Claude Code's hooks reference: the common fields (`session_id`, `transcript_path`,
`cwd`, `permission_mode`, `hook_event_name`) and each hook's own. `older=True` gives what 2025
versions sent: no `tool_use_id`, no `permission_mode`."""

from __future__ import annotations

import uuid
from typing import Any

CWD = "/home/dev/projects/shop"

# A Read result as big as Claude Code passes them (hundreds of KB), with non-ASCII text.
LARGE_FILE = "".join(f"{n:6d}\tdef prix(article): return article.prix  # €, ✓, 日本語 {n}\n" for n in range(6000))
assert len(LARGE_FILE.encode()) > 300_000


def new_session_id() -> str:
    return str(uuid.uuid4())


def tool_use_id() -> str:
    return f"toolu_01{uuid.uuid4().hex[:22]}"


def common(session_id: str, hook: str, *, older: bool = False, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "session_id": session_id,
        "transcript_path": f"/home/dev/.claude/projects/-home-dev-projects-shop/{session_id}.jsonl",
        "cwd": CWD,
    }
    if not older:
        payload["permission_mode"] = "default"
    payload["hook_event_name"] = hook
    payload.update(fields)
    return payload


def session_start(session_id: str, source: str = "startup") -> dict[str, Any]:
    payload = common(session_id, "SessionStart", source=source, model="claude-sonnet-4-5-20250929")
    del payload["permission_mode"]  # SessionStart may come without it
    return payload


def user_prompt(session_id: str, prompt: str) -> dict[str, Any]:
    return common(session_id, "UserPromptSubmit", prompt=prompt)


def pre_tool(
    session_id: str, tool: str, tool_input: dict[str, Any], use_id: str | None, **extra: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {"tool_name": tool, "tool_input": tool_input}
    if use_id is not None:
        fields["tool_use_id"] = use_id
    return common(session_id, "PreToolUse", older=use_id is None, **fields, **extra)


def post_tool(
    session_id: str, tool: str, tool_input: dict[str, Any], tool_response: Any, use_id: str | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {"tool_name": tool, "tool_input": tool_input, "tool_response": tool_response}
    if use_id is not None:
        fields["tool_use_id"] = use_id
    return common(session_id, "PostToolUse", older=use_id is None, **fields)


def post_tool_failure(
    session_id: str, tool: str, tool_input: dict[str, Any], use_id: str, error: str
) -> dict[str, Any]:
    return common(
        session_id, "PostToolUseFailure", tool_name=tool, tool_input=tool_input, tool_use_id=use_id, error=error,
        is_interrupt=False,
    )


def permission_request(session_id: str, tool: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return common(
        session_id, "PermissionRequest", tool_name=tool, tool_input=tool_input,
        permission_suggestions=[{"type": "addRules", "rules": [{"toolName": tool}], "behavior": "allow",
                                 "destination": "localSettings"}],
    )


def notification(session_id: str) -> dict[str, Any]:
    return common(session_id, "Notification", message="Claude needs your permission to use Bash",
                  notification_type="permission_prompt")


def subagent_start(session_id: str, agent_id: str) -> dict[str, Any]:
    return common(session_id, "SubagentStart", agent_id=agent_id, agent_type="Explore")


def subagent_stop(session_id: str, agent_id: str) -> dict[str, Any]:
    return common(session_id, "SubagentStop", stop_hook_active=False, agent_id=agent_id, agent_type="Explore",
                  agent_transcript_path=f"/home/dev/.claude/projects/x/{session_id}/subagents/agent-{agent_id}.jsonl",
                  last_assistant_message="Found 3 call sites.")


def stop(session_id: str) -> dict[str, Any]:
    return common(session_id, "Stop", stop_hook_active=False, last_assistant_message="Done: les tests passent ✓")


def pre_compact(session_id: str) -> dict[str, Any]:
    return common(session_id, "PreCompact", trigger="manual", custom_instructions="keep the test plan")


def session_end(session_id: str, reason: str = "prompt_input_exit") -> dict[str, Any]:
    return common(session_id, "SessionEnd", reason=reason)


def future_hook(session_id: str) -> dict[str, Any]:
    """A hook this client was written before: it must be kept, not dropped."""
    return common(session_id, "PostToolBatch", tool_calls=[{"tool_name": "Read"}], batch_id="b-1")


def realistic_session(session_id: str) -> list[dict[str, Any]]:
    """A short Claude Code session touching every kind of hook, in the order Claude Code fires them."""
    read, bash, write, edit, failing, agent = (tool_use_id() for _ in range(6))
    read_input = {"file_path": f"{CWD}/src/prix.py"}
    bash_input = {"command": "pytest -q", "description": "Lancer les tests", "timeout": 120000}
    write_input = {"file_path": f"{CWD}/src/nouveau.py", "content": "print('héllo')\n"}
    edit_input = {"file_path": f"{CWD}/src/prix.py", "old_string": "prix", "new_string": "prix_ttc",
                  "replace_all": False}
    return [
        session_start(session_id),
        user_prompt(session_id, "Corrige le calcul du prix unitaire — et ajoute un test ✓ 日本語"),
        pre_tool(session_id, "Read", read_input, read),
        post_tool(session_id, "Read", read_input, {"type": "text", "file": {
            "filePath": read_input["file_path"], "content": LARGE_FILE, "numLines": 6000, "startLine": 1,
            "totalLines": 6000}}, read),
        permission_request(session_id, "Bash", bash_input),
        notification(session_id),
        pre_tool(session_id, "Bash", bash_input, bash),
        post_tool(session_id, "Bash", bash_input, {"stdout": "3 passed in 0.12s\n", "stderr": "",
                                                   "interrupted": False, "isImage": False}, bash),
        pre_tool(session_id, "Write", write_input, write),
        post_tool(session_id, "Write", write_input, {"type": "create", "filePath": write_input["file_path"],
                                                     "content": write_input["content"], "structuredPatch": []}, write),
        pre_tool(session_id, "Edit", edit_input, edit),
        post_tool(session_id, "Edit", edit_input, {"filePath": edit_input["file_path"], "oldString": "prix",
                                                   "newString": "prix_ttc", "structuredPatch": [],
                                                   "userModified": False, "replaceAll": False}, edit),
        pre_tool(session_id, "Bash", {"command": "false"}, failing),
        post_tool_failure(session_id, "Bash", {"command": "false"}, failing, "Command failed with exit code 1"),
        subagent_start(session_id, agent),
        subagent_stop(session_id, agent),
        pre_tool(session_id, "Grep", {"pattern": "prix"}, None),  # an older client: no tool_use_id
        post_tool(session_id, "Grep", {"pattern": "prix"}, {"mode": "files_with_matches", "numFiles": 1}, None),
        future_hook(session_id),
        pre_compact(session_id),
        stop(session_id),
        session_end(session_id),
    ]
