"""The export's writers: the API's Event, one per line or one per CSV row."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from uuid import uuid4

from application.queries import RecordedEvent
from entrypoints.export_command import CsvWriter, JsonLinesWriter
from entrypoints.http.schemas import encode, event_out

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def recorded(data_json: str, metadata_json: str | None = None) -> RecordedEvent:
    return RecordedEvent(uuid4(), 7, 3, "tool_result", WHEN, WHEN, data_json, metadata_json)


def test_a_line_is_the_api_event_and_line_breaks_between_tokens_become_spaces() -> None:
    plain = recorded('{"a": 1.0}', '{"m": [1, 2.50]}')
    spread = recorded('{\r\n "text": "one\\ntwo",\n "f": 1.0\n}')
    out = io.BytesIO()
    writer = JsonLinesWriter(out)
    writer.write([plain, spread])
    writer.close()
    lines = out.getvalue().split(b"\n")
    assert lines[0] == encode(event_out(plain)) and lines[-1] == b"" and len(lines) == 3
    assert b'"data":{   "text": "one\\ntwo",  "f": 1.0 }' in lines[1]  # the string's own \\n stays escaped
    assert json.loads(lines[1])["data"] == {"text": "one\ntwo", "f": 1.0}


def test_csv_has_the_event_columns_and_json_text_cells() -> None:
    events = [recorded('{"a": 1.0,\n "b": "é"}', '{"m": 1}'), recorded("{}")]
    out = io.BytesIO()
    writer = CsvWriter(out)
    writer.write(events)
    writer.close()
    assert not out.closed  # the caller owns the output
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    assert rows[0] == ["id", "session_id", "event_type", "sent_at", "received_at", "data", "metadata", "sequence"]
    assert rows[1][5:] == ['{"a": 1.0,\n "b": "é"}', '{"m": 1}', "3"]
    assert rows[2][5:7] == ["{}", "null"]
    assert rows[1][:5] == [str(events[0].event_id), "7", "tool_result", *[event_out(events[0]).sent_at] * 2]
