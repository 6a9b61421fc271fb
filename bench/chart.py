"""The chart: one small panel per check, a bar per store, the threshold dashed and the goal
dotted, so a reader sees at a glance which side of the line each figure fell on. Only the bench
imports matplotlib (the `bench` extra); the tests never do."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.report import STORE_TITLES
from bench.stats import Check


def colour(check: Check) -> str:
    """Green for a pass, red for a failure, lighter when only informational, grey without a threshold."""
    if check.passed is None or math.isnan(check.value):
        return "#90a4ae"
    if check.passed:
        return "#2e7d32" if check.enforced else "#81c784"
    return "#c62828" if check.enforced else "#e57373"


def draw(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[str, list[tuple[str, Check]]] = {}
    for kind, store in report["stores"].items():
        for case in store["cases"]:
            for data in case["checks"]:
                check = Check.from_dict(data)
                panels.setdefault(f"{case['number']}. {check.name}", []).append((kind, check))
    if not panels:
        return
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, (title, entries) in zip(axes.flat, panels.items(), strict=False):
        labels = [STORE_TITLES.get(kind, kind) for kind, _ in entries]
        values = [0.0 if math.isnan(check.value) else check.value for _, check in entries]
        colours = [colour(check) for _, check in entries]
        bars = axis.bar(labels, values, color=colours, width=0.5)
        for bar, (_, check) in zip(bars, entries, strict=True):
            text = "n/a" if math.isnan(check.value) else f"{check.value:.3g}"
            axis.annotate(
                text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=9
            )
        first = entries[0][1]
        if first.threshold is not None:
            axis.axhline(
                first.threshold,
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"threshold {first.comparison} {first.threshold:g}",
            )
        if first.goal is not None:
            axis.axhline(
                first.goal, color="black", linestyle=":", linewidth=1, label=f"goal {first.comparison} {first.goal:g}"
            )
        if first.threshold is not None or first.goal is not None:
            axis.legend(fontsize=7, loc="best")
        top = max([*values, first.threshold or 0.0, first.goal or 0.0]) or 1.0
        axis.set_ylim(0, top * 1.25)
        axis.set_ylabel(first.unit if first.unit != "x" else "ratio")
        axis.set_title("\n".join(textwrap.wrap(title, 38)), fontsize=9)
        axis.tick_params(labelsize=8)
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    quick = " (quick run: indicative only)" if report["run"]["quick"] else ""
    figure.suptitle(
        f"session-events benchmark {report['machine']['date'][:10]}{quick}\n"
        "green: pass, red: fail (pale: information only), grey: no threshold",
        fontsize=11,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.97))
    figure.savefig(path, dpi=110)
    plt.close(figure)
