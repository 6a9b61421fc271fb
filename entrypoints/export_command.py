"""`session-events export`: the event log's recorded events as JSON lines or CSV.

Each event is written exactly as the API's `Event` (the same Struct and `event_out`, so the two
can never drift apart: `data` is the client's JSON text, to the byte). Pages are written as they
are read, so memory stays flat however long the log. Progress goes to standard error, only when
it is a terminal: standard output may be the export itself."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Protocol

import msgspec

from adapters.eventstore.export import LogScan
from application.queries import RecordedEvent
from entrypoints.http.schemas import Event, encode, event_out
from entrypoints.progress import CommandProgress

COLUMNS = Event.__struct_fields__
"""The CSV header: the API's Event fields, in their order."""
JSON_COLUMNS = frozenset({"data", "metadata"})


class Writer(Protocol):
    def write(self, events: Iterable[RecordedEvent]) -> None: ...

    def close(self) -> None: ...


class JsonLinesWriter:
    """One API Event object per line. A client may send `data` (or `metadata`) spread over
    several lines; a raw line break in JSON text can only be whitespace between tokens (inside a
    string it is always escaped), so it is written as a space: the event stays on its line, with
    every key, string and number as sent. (The CSV export keeps such line breaks as they are.)"""

    def __init__(self, output: IO[bytes]) -> None:
        self._output = output

    def write(self, events: Iterable[RecordedEvent]) -> None:
        self._output.write(b"".join(_one_line(encode(event_out(e))) + b"\n" for e in events))

    def close(self) -> None:
        self._output.flush()


def _one_line(encoded: bytes) -> bytes:
    if b"\n" in encoded or b"\r" in encoded:
        return encoded.replace(b"\r", b" ").replace(b"\n", b" ")
    return encoded


class CsvWriter:
    """The API Event's fields as columns, header first; `data` and `metadata` as JSON text
    (`null` for no metadata), so that every cell of those columns parses as JSON."""

    def __init__(self, output: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(output, encoding="utf-8", newline="", write_through=True)
        self._csv = csv.writer(self._text)
        self._csv.writerow(COLUMNS)

    def write(self, events: Iterable[RecordedEvent]) -> None:
        self._csv.writerows(_cells(event_out(e)) for e in events)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # leaves the binary output open for its owner


def _cells(event: Event) -> list[object]:
    cells: list[object] = []
    for name, value in zip(COLUMNS, msgspec.structs.astuple(event), strict=True):
        if name in JSON_COLUMNS:
            cells.append("null" if value is None else bytes(value).decode())
        else:
            cells.append(value)
    return cells


def writer_for(file_format: str, output: IO[bytes]) -> Writer:
    return CsvWriter(output) if file_format == "csv" else JsonLinesWriter(output)


@contextmanager
def opened_output(path: str | None) -> Iterator[IO[bytes]]:
    """Standard output, or a file that appears under its name only once it is complete: a failed
    export leaves no half-written file behind (nor replaces an earlier complete one)."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as file:
            yield file
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def export(scan: LogScan, writer: Writer, *, progress: bool) -> int:
    """Writes every page of the scan; returns how many events were exported."""
    exported = 0
    with CommandProgress("exporting", scan.total, terminal=progress, plain_lines=False) as shown:
        for page in scan.pages():
            writer.write(page)
            exported += len(page)
            shown.update(scan.read, exported)
    writer.close()
    return exported
