"""Where the client finds its spool, its service and its token."""

from __future__ import annotations

import os
from pathlib import Path

from adapters.claude_code.config import (
    ClientConfig,
    client_file_path,
    sending_configured,
    spool_path,
    write_client_file,
)


def test_the_spool_lives_in_the_users_state_directory_unless_named(tmp_path: Path) -> None:
    assert spool_path({"HOME": "/home/ann"}) == "/home/ann/.local/state/session-events/spool.db"
    assert spool_path({"HOME": "/home/ann", "XDG_STATE_HOME": "/xdg"}) == "/xdg/session-events/spool.db"
    assert spool_path({"HOME": "/home/ann", "XDG_STATE_HOME": "relative"}) == (
        "/home/ann/.local/state/session-events/spool.db")
    assert spool_path({"SESSION_EVENTS_SPOOL": str(tmp_path / "s.db")}) == str(tmp_path / "s.db")
    assert spool_path({"SESSION_EVENTS_SPOOL": "relative/s.db"}) == os.path.abspath("relative/s.db")


def test_the_environment_wins_over_the_client_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert ClientConfig.load(env).missing() == "SESSION_EVENTS_URL is not set (and no URL in the client file)"
    assert not sending_configured(env)
    write_client_file(client_file_path(env), url="http://file:1/", token="se_file")
    from_file = ClientConfig.load(env)
    assert (from_file.url, from_file.token, from_file.missing()) == ("http://file:1", "se_file", None)
    assert sending_configured(env)
    from_env = ClientConfig.load({**env, "SESSION_EVENTS_URL": "http://env:2", "SESSION_EVENTS_TOKEN": "se_env"})
    assert (from_env.url, from_env.token) == ("http://env:2", "se_env")
    write_client_file(client_file_path(env), url=None, token="se_new")  # merges: the URL stays
    assert (ClientConfig.load(env).url, ClientConfig.load(env).token) == ("http://file:1", "se_new")


def test_a_token_no_header_can_carry_or_a_url_that_is_not_http_starts_no_sender(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"), "SESSION_EVENTS_URL": "http://x"}
    assert "characters" in (ClientConfig.load({**env, "SESSION_EVENTS_TOKEN": "se_a\nb"}).missing() or "")
    assert not sending_configured({**env, "SESSION_EVENTS_TOKEN": "se a"})
    assert not sending_configured({**env, "SESSION_EVENTS_TOKEN": "se_a", "SESSION_EVENTS_URL": "ftp://x"})
    assert sending_configured({**env, "SESSION_EVENTS_TOKEN": "se_a"})
