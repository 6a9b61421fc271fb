"""`session-events hooks install|uninstall`: merge with the user's settings, idempotent, exact removal."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from adapters.claude_code import settings_file
from tests.claude_code.conftest import SESSION_EVENTS

COMMAND = "/opt/se/bin/session-events hook"

USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "env": {"FOO": "1"},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh", "timeout": 5}]}],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "permissions": {"allow": ["Bash(git status)"]},
}


def test_install_adds_our_handler_to_every_default_event_beside_the_users_own() -> None:
    settings = copy.deepcopy(USER_SETTINGS)
    changed = settings_file.install(settings, COMMAND)
    assert changed == list(settings_file.DEFAULT_EVENTS)
    assert settings_file.installed_events(settings) == [
        "PreToolUse", "Stop", *[e for e in settings_file.DEFAULT_EVENTS if e not in ("PreToolUse", "Stop")]]
    pre_tool = settings["hooks"]["PreToolUse"]
    assert pre_tool[0] == USER_SETTINGS["hooks"]["PreToolUse"][0]
    assert pre_tool[1] == {"matcher": "*", "hooks": [{"type": "command", "command": COMMAND, "timeout": 10}]}
    assert settings["hooks"]["SessionStart"] == [{"hooks": [{"type": "command", "command": COMMAND, "timeout": 10}]}]
    assert {k: v for k, v in settings.items() if k != "hooks"} == {
        k: v for k, v in USER_SETTINGS.items() if k != "hooks"}


def test_install_twice_changes_nothing_and_uninstall_restores_the_original() -> None:
    settings = copy.deepcopy(USER_SETTINGS)
    settings_file.install(settings, COMMAND)
    once = copy.deepcopy(settings)
    assert settings_file.install(settings, COMMAND) == []
    assert settings == once
    assert settings_file.uninstall(settings) == settings_file.installed_events(once)
    assert settings == USER_SETTINGS
    assert settings_file.uninstall(settings) == []


def test_uninstall_from_settings_that_had_no_hooks_leaves_no_trace() -> None:
    settings: dict[str, Any] = {"model": "sonnet"}
    settings_file.install(settings, COMMAND, ["PreToolUse", "SessionEnd"])
    settings_file.uninstall(settings)
    assert settings == {"model": "sonnet"}


def test_a_user_handler_sharing_our_group_survives_uninstall() -> None:
    settings = {"hooks": {"Stop": [{"hooks": [
        {"type": "command", "command": COMMAND, "timeout": 10}, {"type": "command", "command": "say done"}]}]}}
    assert settings_file.uninstall(settings) == ["Stop"]
    assert settings == {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}


def test_install_refreshes_our_command_when_it_moved() -> None:
    settings: dict[str, Any] = {}
    settings_file.install(settings, "/old/venv/bin/session-events hook", ["Stop"])
    assert settings_file.install(settings, COMMAND, ["Stop"]) == ["Stop"]
    assert settings["hooks"]["Stop"] == [{"hooks": [{"type": "command", "command": COMMAND, "timeout": 10}]}]


def test_only_our_command_is_recognised_as_ours() -> None:
    assert settings_file.is_our_handler({"type": "command", "command": "'/a b/session-events' hook"})
    assert settings_file.is_our_handler({"type": "command", "command": "session-events hook"})
    for other in ("session-events flush", "my-session-events hook", "echo session-events hook x", "'unclosed"):
        assert not settings_file.is_our_handler({"type": "command", "command": other})
    assert not settings_file.is_our_handler({"type": "http", "url": "http://x/session-events hook"})


def test_worktree_create_and_unknown_event_names_are_never_installed() -> None:
    settings: dict[str, Any] = {"model": "opus"}
    for refused in ("WorktreeCreate", "PretoolUse", "PreToolCall"):
        with pytest.raises(settings_file.SettingsError):
            settings_file.install(settings, COMMAND, [refused])
    assert settings_file.install(settings, COMMAND, ["StopFailure"]) == ["StopFailure"]


# --- the real command --------------------------------------------------------------------------


def run(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSION_EVENTS_", "CLAUDE_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    return subprocess.run([SESSION_EVENTS, "hooks", *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_the_command_merges_into_a_project_settings_file_and_takes_itself_out(tmp_path: Path) -> None:
    settings = tmp_path / "project" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(USER_SETTINGS, indent=2))
    project = ["--scope", "project", "--project-dir", str(tmp_path / "project")]

    installed = run(tmp_path, "install", *project)
    assert installed.returncode == 0, installed.stderr
    written = json.loads(settings.read_text())
    command = written["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
    assert command == f"{SESSION_EVENTS} hook"
    assert set(settings_file.installed_events(written)) == set(settings_file.DEFAULT_EVENTS)
    assert run(tmp_path, "install", *project).returncode == 0
    assert json.loads(settings.read_text()) == written

    removed = run(tmp_path, "uninstall", *project)
    assert removed.returncode == 0, removed.stderr
    assert json.loads(settings.read_text()) == USER_SETTINGS


def test_the_command_writes_user_settings_and_saves_url_and_token_privately(tmp_path: Path) -> None:
    done = run(tmp_path, "install", "--url", "http://127.0.0.1:9/", "--token", "-", "--event", "Stop",
               stdin="se_secret\n")
    assert done.returncode == 0, done.stderr
    user_settings = json.loads((tmp_path / "home" / ".claude" / "settings.json").read_text())
    assert settings_file.installed_events(user_settings) == ["Stop"]
    client_file = tmp_path / "config" / "session-events" / "client.json"
    assert json.loads(client_file.read_text()) == {"url": "http://127.0.0.1:9/", "token": "se_secret"}
    assert client_file.stat().st_mode & 0o077 == 0
    assert "se_secret" not in done.stdout + done.stderr


def test_the_command_refuses_a_settings_file_that_is_not_json(tmp_path: Path) -> None:
    settings = tmp_path / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"hooks": {,}')
    done = run(tmp_path, "install")
    assert done.returncode == 1 and "not valid JSON" in done.stderr
    assert settings.read_text() == '{"hooks": {,}'
