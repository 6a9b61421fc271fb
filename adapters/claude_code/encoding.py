"""Event `data` -> the compact JSON text that is spooled and later sent, as is, to the service.

Two things the service would refuse are fixed here, once, when the hook runs, rather than being
discovered by the sender as a batch that can never be stored:
- text that is not valid Unicode (a lone surrogate, which Python's `json` accepts as `\\ud800`)
  becomes U+FFFD;
- an event too big for a request (the service takes 10 MiB per call) is shrunk: long strings in the
  payload are cut (and `data.truncated` says so), and if that is not enough the payload is
  replaced by its size (`data.payload_omitted`)."""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_EVENT_BYTES = 4 * 1024 * 1024
KEPT_STRING_CHARS = 64 * 1024

_LONE_SURROGATE = "[\ud800-\udfff]"


def parse_payload(raw: bytes) -> object:
    """Claude Code's JSON; NaN and Infinity (which no other JSON reader accepts) become null."""
    return json.loads(raw, parse_constant=lambda _name: None)


def encode_data(data: dict[str, Any]) -> tuple[str, int]:
    """The JSON text of `data` and its size in UTF-8 bytes, under MAX_EVENT_BYTES."""
    text, size = _encode(data)
    if size <= MAX_EVENT_BYTES:
        return text, size
    shrunk = dict(data)
    shrunk["payload"] = _cut_strings(data.get("payload"))
    shrunk["truncated"] = True
    text, size = _encode(shrunk)
    if size <= MAX_EVENT_BYTES:
        return text, size
    shrunk["payload"] = None
    shrunk["payload_omitted"] = {"bytes": size}
    return _encode(shrunk)


def _encode(data: dict[str, Any]) -> tuple[str, int]:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        return text, len(text.encode("utf-8"))
    except UnicodeEncodeError:
        text = re.sub(_LONE_SURROGATE, "\ufffd", text)
        return text, len(text.encode("utf-8"))


def _cut_strings(value: object) -> object:
    if isinstance(value, str):
        if len(value) <= KEPT_STRING_CHARS:
            return value
        return f"{value[:KEPT_STRING_CHARS]}... [truncated by session-events: {len(value)} characters]"
    if isinstance(value, dict):
        return {key: _cut_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_strings(item) for item in value]
    return value
