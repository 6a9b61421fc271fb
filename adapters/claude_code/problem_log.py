"""Where the hook and the sender report problems: never standard output (Claude Code reads it).

A line goes to a log file next to the spool (kept under a size cap), and, for the hook, to
standard error too, which Claude Code shows in its verbose transcript. Logging must never fail
the caller: a read-only or full disk just loses the log line."""

from __future__ import annotations

import os
import sys
import time

MAX_LOG_BYTES = 5 * 1024 * 1024


class ProblemLog:
    __slots__ = ("echo_to_stderr", "path")

    def __init__(self, path: str | None, *, echo_to_stderr: bool) -> None:
        self.path = path
        self.echo_to_stderr = echo_to_stderr

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        line = f"{stamp} session-events[{os.getpid()}]: {message}\n"
        if self.echo_to_stderr:
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass
        if self.path is None:
            return
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            try:
                if os.stat(self.path).st_size > MAX_LOG_BYTES:
                    os.replace(self.path, self.path + ".1")
            except FileNotFoundError:
                pass
            with open(self.path, "a", encoding="utf-8", errors="replace") as file:
                file.write(line)
        except OSError:
            pass
