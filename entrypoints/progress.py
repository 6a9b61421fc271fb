"""Progress of a long command (a rebuild, an export), always on standard error, which is free
for it (standard output carries results): a rich bar with events done, rate and time left on a
terminal; otherwise a plain line every few seconds, or nothing."""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_EVERY_SECONDS = 5.0


class CommandProgress:
    def __init__(self, label: str, total: int, *, terminal: bool, plain_lines: bool) -> None:
        """`terminal`: draw a bar (the caller knows whether standard error is one and whether it
        was asked to be quiet); `plain_lines`: otherwise print a line every few seconds."""
        self._label, self._total = label, max(total, 1)
        self._terminal, self._plain_lines = terminal, plain_lines
        self._bar: Any = None
        self._started = self._last_line = time.monotonic()

    def __enter__(self) -> CommandProgress:
        if self._terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[events]:>12,} events {task.fields[rate]:>9,.0f}/s"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                redirect_stdout=False,
                redirect_stderr=False,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total, events=0, rate=0.0)
        self._started = time.monotonic()
        return self

    def update(self, done: int, events: int | None = None) -> None:
        """`done` of the total (log positions); `events` handled so far (default: `done`)."""
        events = done if events is None else events
        rate = events / max(time.monotonic() - self._started, 1e-6)
        if self._bar is not None:
            self._bar.update(self._task, completed=min(done, self._total), events=events, rate=rate)
        elif self._plain_lines and time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS:
            self._last_line = time.monotonic()
            print(f"{self._label}: {done:,}/{self._total:,} ({rate:,.0f} events/s)", file=sys.stderr, flush=True)

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()
