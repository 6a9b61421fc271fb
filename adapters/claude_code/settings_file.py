"""Adds our hook command to a Claude Code settings file, and takes it out again.

Claude Code runs every hook it finds in every settings file, so the user's own hooks sit next to
ours untouched. Ours is recognised by its command (`... session-events hook`): installing again
changes nothing (or refreshes our command if it moved), and uninstalling removes our handlers,
and only the groups and event keys that we emptied, nothing the user wrote. The file is replaced
atomically; a file that is not valid JSON is refused rather than overwritten.

Claude Code rejects a whole settings file that names a hook event it does not know ("Invalid key
in record"), so the default set is the events every recent version knows; `events=` adds others.
`WorktreeCreate` is never installed: a command hook there replaces git's own worktree creation
and must print a path, which an observer cannot do."""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_EVENTS = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "Notification",
    "SubagentStart",
    "SubagentStop",
    "Stop",
    "PreCompact",
    "SessionEnd",
)
# Every hook event Claude Code documents (2026). A name outside this list is refused: one typo in
# a settings file makes Claude Code ignore the whole file.
KNOWN_EVENTS = frozenset({
    *DEFAULT_EVENTS, "Setup", "InstructionsLoaded", "UserPromptExpansion", "PermissionDenied", "PostToolBatch",
    "TaskCreated", "TaskCompleted", "TeammateIdle", "StopFailure", "PostCompact", "Elicitation",
    "ElicitationResult", "ConfigChange", "CwdChanged", "FileChanged", "WorktreeRemove",
})
# Events whose groups take a tool-name matcher; "*" matches every tool.
TOOL_EVENTS = frozenset({"PreToolUse", "PostToolUse", "PostToolUseFailure", "PermissionRequest", "PermissionDenied"})
NEVER_INSTALLED = frozenset({"WorktreeCreate"})
HOOK_TIMEOUT_SECONDS = 10


class SettingsError(Exception):
    """The settings file cannot be read or changed safely; nothing was written."""


def settings_path(scope: str, *, project_dir: Path, env: Mapping[str, str]) -> Path:
    if scope == "user":
        config_dir = env.get("CLAUDE_CONFIG_DIR")
        return (Path(config_dir).expanduser() if config_dir else Path.home() / ".claude") / "settings.json"
    if scope == "project":
        return project_dir / ".claude" / "settings.json"
    if scope == "local":
        return project_dir / ".claude" / "settings.local.json"
    raise ValueError(f"unknown scope {scope!r}")


def is_our_handler(handler: object) -> bool:
    if not isinstance(handler, dict) or handler.get("type") != "command":
        return False
    command = handler.get("command")
    if not isinstance(command, str):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return len(words) >= 2 and words[-1] == "hook" and os.path.basename(words[-2]) == "session-events"


def our_handler(command: str) -> dict[str, Any]:
    return {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_SECONDS}


def install(settings: dict[str, Any], command: str, events: Iterable[str] = DEFAULT_EVENTS) -> list[str]:
    """Adds our handler for each event (in place); returns the events that changed."""
    events = list(events)
    for event in events:
        if event in NEVER_INSTALLED:
            raise SettingsError(f"{event} hooks replace Claude Code's own behaviour; not installed")
        if event not in KNOWN_EVENTS:
            raise SettingsError(
                f"{event!r} is not a Claude Code hook event (Claude Code would ignore the whole settings file);"
                f" known: {', '.join(sorted(KNOWN_EVENTS))}"
            )
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError('"hooks" in the settings file is not an object')
    changed = []
    for event in events:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise SettingsError(f'"hooks.{event}" in the settings file is not a list')
        ours = [
            (group, handler)
            for group in groups
            if isinstance(group, dict) and isinstance(group.get("hooks"), list)
            for handler in group["hooks"]
            if is_our_handler(handler)
        ]
        if ours:
            if all(handler == our_handler(command) for _group, handler in ours):
                continue
            for _group, handler in ours:  # our command moved (a new virtualenv, say): refresh it
                handler.clear()
                handler.update(our_handler(command))
        else:
            group: dict[str, Any] = {"matcher": "*"} if event in TOOL_EVENTS else {}
            group["hooks"] = [our_handler(command)]
            groups.append(group)
        changed.append(event)
    return changed


def uninstall(settings: dict[str, Any]) -> list[str]:
    """Removes our handlers (in place), and the groups and event keys that only they filled;
    returns the events that changed."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    changed = []
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        touched = False
        kept = []
        for group in groups:
            handlers = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(handlers, list) or not any(is_our_handler(h) for h in handlers):
                kept.append(group)
                continue
            touched = True
            remaining = [h for h in handlers if not is_our_handler(h)]
            if remaining:
                group["hooks"] = remaining
                kept.append(group)
        if not touched:
            continue
        changed.append(event)
        if kept:
            hooks[event] = kept
        else:
            del hooks[event]
    if changed and not hooks:
        del settings["hooks"]
    return changed


def installed_events(settings: dict[str, Any]) -> list[str]:
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return []
    return [
        event
        for event, groups in hooks.items()
        if isinstance(groups, list)
        and any(
            is_our_handler(handler)
            for group in groups
            if isinstance(group, dict) and isinstance(group.get("hooks"), list)
            for handler in group["hooks"]
        )
    ]


def read_settings(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise SettingsError(f"cannot read {path}: {error}") from error
    if not text.strip():
        return {}
    try:
        settings = json.loads(text)
    except ValueError as error:
        raise SettingsError(f"{path} is not valid JSON ({error}); fix it first, nothing was changed") from error
    if not isinstance(settings, dict):
        raise SettingsError(f"{path} does not hold a JSON object; nothing was changed")
    return settings


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Replaces the file atomically, keeping its permissions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    temporary = path.with_name(f".{path.name}.session-events.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(settings, file, indent=2, ensure_ascii=False)
            file.write("\n")
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def hook_command(executable: Sequence[str]) -> str:
    return " ".join(shlex.quote(word) for word in (*executable, "hook"))
