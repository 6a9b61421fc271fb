"""The top frames of a py-spy profile, as text (for a closing note or a commit message).

    py-spy record -f raw -r 200 -o profile.txt -- python bench/bench_rebuild.py --only catch-up --model session_events
    python bench/py_spy_summary.py profile.txt --within "timed (bench_rebuild.py"

`--within` keeps only the stacks through a frame containing that text (the timed part of a
benchmark, not its set-up). Self time is where the samples were taken; inclusive time counts a
frame once per sample wherever it is on the stack. py-spy leaves out threads it sees idle, so
the percentages are mostly of the time the process was busy, not of its waits for the database.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"(.*) \((.*?):\d+\)")


def short(frame: str) -> str:
    """`function (file)`, without the line number, so that a function's lines add up."""
    match = _FRAME.fullmatch(frame)
    return f"{match.group(1)} ({match.group(2)})" if match else frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path, help="py-spy record -f raw output")
    parser.add_argument("--within", action="append", default=[], help="keep stacks through a frame containing this")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if args.within and not any(text in frame for text in args.within for frame in frames):
            continue
        samples = int(count)
        total += samples
        names = [short(frame) for frame in frames]
        own[names[-1]] += samples
        for name in set(names):
            inclusive[name] += samples
    if not total:
        print("no samples", file=sys.stderr)
        return 1
    print(f"samples: {total}")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"top {title}:")
        for name, samples in counter.most_common(args.top):
            print(f"  {100 * samples / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
