"""The session log's transcoder: the library's JSON format, written by msgspec.

Every stored event goes through the transcoder, and the library's (`json` with a `default` hook
for each UUID and datetime) was a tenth of the server's time under batch load. This one writes
the same document: tagged objects (`{"_type_": "uuid_hex", "_data_": ...}`) for the types the
library registers, compact separators, text unescaped (UTF-8). The library reads it back as its
own (decoding is left to it), and `tests/unit/test_transcoder.py` holds the two to that. Anything
it does not know how to write the same way (a non-finite float, a key that is not a string, a
type without a transcoding) is handed to the library's encoder."""

from __future__ import annotations

import math
from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder

_encode = msgspec.json.Encoder().encode


class _NotPlain(Exception):
    """A value the library's encoder must write."""


class CompactJSONTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        try:
            return _encode(self._tagged(obj))
        except (_NotPlain, msgspec.EncodeError):
            return super().encode(obj)

    def _tagged(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            if not math.isfinite(value):  # the library writes NaN and Infinity; msgspec, null
                raise _NotPlain
            return value
        if kind is dict:
            tagged = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise _NotPlain
                tagged[key] = self._tagged(item)
            return tagged
        if kind is list or kind is tuple:
            return [self._tagged(item) for item in value]
        transcoding = self.types.get(kind)
        if transcoding is None:
            raise _NotPlain
        return {"_type_": transcoding.name, "_data_": self._tagged(transcoding.encode(value))}
