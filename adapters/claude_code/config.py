"""Where the Claude Code client keeps its spool and log, and which service it sends to.

The environment wins (`SESSION_EVENTS_URL`, `SESSION_EVENTS_TOKEN`, `SESSION_EVENTS_SPOOL`): that
is the contract, and it is how Claude Code's own `env` setting reaches the hook. A client file
(`$XDG_CONFIG_HOME/session-events/client.json`, written by `hooks install --url --token`, mode
0600) fills in what the environment leaves unset, so that installing the hooks is enough and the
token need not sit in a shell profile or in a settings file that Claude's tools can read.

Paths are plain strings in the modules the hook imports: `pathlib` alone would add 5 ms to every
hook's start-up."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

URL_VARIABLE = "SESSION_EVENTS_URL"
TOKEN_VARIABLE = "SESSION_EVENTS_TOKEN"  # noqa: S105 - the variable's name, not a secret
SPOOL_VARIABLE = "SESSION_EVENTS_SPOOL"


def _home_based(env: Mapping[str, str], variable: str, fallback: str) -> str:
    base = env.get(variable)
    if base and os.path.isabs(base):
        return base
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), fallback)


def spool_path(env: Mapping[str, str]) -> str:
    """The spool file: `SESSION_EVENTS_SPOOL`, else the user's state directory."""
    explicit = env.get(SPOOL_VARIABLE)
    if explicit:
        # Absolute: the hook runs in the project's directory, the sender it starts elsewhere.
        return os.path.abspath(os.path.expanduser(explicit))
    return os.path.join(_home_based(env, "XDG_STATE_HOME", ".local/state"), "session-events", "spool.db")


def log_path(spool: str) -> str:
    """Problems are logged next to the spool, where a user looking for the spool finds them."""
    return spool + ".log"


def client_file_path(env: Mapping[str, str]) -> str:
    return os.path.join(_home_based(env, "XDG_CONFIG_HOME", ".config"), "session-events", "client.json")


class ClientConfig:
    """Where to send spooled events; `url` or `token` is None when nothing configures it."""

    __slots__ = ("spool", "token", "url")

    def __init__(self, url: str | None, token: str | None, spool: str) -> None:
        self.url = url.rstrip("/") if url else None
        self.token = token or None
        self.spool = spool

    @classmethod
    def load(cls, env: Mapping[str, str]) -> ClientConfig:
        url, token = env.get(URL_VARIABLE), env.get(TOKEN_VARIABLE)
        if not (url and token):
            stored = read_client_file(client_file_path(env))
            url = url or stored.get("url")
            token = token or stored.get("token")
        return cls(url, token, spool_path(env))

    def missing(self) -> str | None:
        """Why events cannot be sent yet, or None when they can."""
        if not self.url:
            return f"{URL_VARIABLE} is not set (and no URL in the client file)"
        if not self.token:
            return f"{TOKEN_VARIABLE} is not set (and no token in the client file)"
        if not all("!" <= character <= "~" for character in self.token):
            return f"{TOKEN_VARIABLE} has characters no token has (spaces, line breaks, non-ASCII)"
        return None


def sending_configured(env: Mapping[str, str]) -> bool:
    """Cheap check for the hook: could a background sender send anything? (Else starting one on
    every hook would only cost time.)"""
    config = ClientConfig.load(env)
    return config.missing() is None and (config.url or "").startswith(("http://", "https://"))


def read_client_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as file:
            loaded = json.load(file)
    except (OSError, ValueError):
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {key: value for key, value in loaded.items() if key in ("url", "token") and isinstance(value, str)}


def write_client_file(path: str, *, url: str | None, token: str | None) -> None:
    """Merges `url`/`token` into the client file, readable by its owner only."""
    stored = read_client_file(path)
    if url:
        stored["url"] = url
    if token:
        stored["token"] = token
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = path + ".tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(stored, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)
