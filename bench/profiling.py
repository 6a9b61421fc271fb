"""`--profile`: py-spy samples the server while a write case runs, and a short summary of the
hottest frames is written next to the report, for before/after comparisons of the write path.

The profile is taken in separate, extra passes (never during a measured repetition): sampling
slows the server, and the figures must not carry that cost."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def available() -> str | None:
    """Why profiling cannot run here, or None."""
    return None if shutil.which("py-spy") else "py-spy is not installed (pip install -e '.[bench]')"


@contextmanager
def recording(pid: int, raw_path: Path, rate: int = 200) -> Iterator[None]:
    """Samples `pid` and its children into `raw_path` (collapsed stacks) until the block ends."""
    process = subprocess.Popen(
        [
            "py-spy",
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            str(rate),
            "--output",
            str(raw_path),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        try:
            _, errors = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        if not raw_path.exists():
            raise RuntimeError(f"py-spy wrote no profile: {errors.strip()[-500:]}")


def summarize(collapsed_lines: Iterable[str], top: int = 15) -> str:
    """The frames that hold the CPU: by self time (the frame on top of the stack) and by total
    time (anywhere on the stack), in percent of all samples."""
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    samples = 0
    for line in collapsed_lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(frame) for frame in stack.split(";") if frame and not frame.startswith("process ")]
        if not frames:
            continue
        samples += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            total_time[frame] += count
    if not samples:
        return "no samples\n"
    lines = [f"{samples} samples", "", "by self time:"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in self_time.most_common(top)]
    lines += ["", "by total time (the frame anywhere on the stack):"]
    lines += [f"  {100 * n / samples:5.1f}%  {frame}" for frame, n in total_time.most_common(top)]
    return "\n".join(lines) + "\n"


def _function(frame: str) -> str:
    """`name (file.py:LINE)` without the line: a function's samples are added up, wherever in it
    they fell (the raw file keeps the lines)."""
    return LINE.sub(")", frame)


LINE = re.compile(r":\d+\)$")
