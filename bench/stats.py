"""Figures and verdicts, kept free of I/O so that the unit tests can pin them down.

A figure is the median of its repetitions with their min and max beside it: a skeptic must be
able to see the spread, not only the middle."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

Comparison = Literal[">=", "<="]


def percentile(values: Iterable[float], q: float) -> float:
    """The nearest-rank percentile (`q` in 0..100): always a value that was observed, so a p99
    of 100 samples is the 99th smallest, not an interpolation between two."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    """Repetitions of one measurement: the median is the figure, min and max its spread."""

    median: float
    min: float
    max: float
    n: int
    unit: str

    @classmethod
    def of(cls, values: Sequence[float], unit: str) -> Summary:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values), len(values), unit)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the repetitions disagreed."""
        return (self.max - self.min) / self.median if self.median else math.inf

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        return cls(
            _number(data["median"]), _number(data["min"]), _number(data["max"]), int(data["n"]), str(data["unit"])
        )


def ratio(figure: float, baseline: float) -> float:
    """figure / baseline; a baseline of zero cannot be compared against and yields NaN."""
    return figure / baseline if baseline else math.nan


@dataclass(frozen=True)
class Check:
    """A figure held against the threshold that must hold (and the goal that should). Without a
    threshold the figure is shown for information only. `enforced` is False where the issue sets
    no threshold (SQLite, a quick run): the verdict is then informational."""

    name: str
    value: float
    threshold: float | None
    comparison: Comparison
    goal: float | None = None
    enforced: bool = True
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        return None if self.threshold is None else meets(self.value, self.threshold, self.comparison)

    @property
    def reached_goal(self) -> bool | None:
        return None if self.goal is None else meets(self.value, self.goal, self.comparison)

    @property
    def verdict(self) -> str:
        if self.threshold is None:
            return "-"
        word = "NO FIGURE" if math.isnan(self.value) else "pass" if self.passed else "FAIL"
        return word if self.enforced else f"{word.lower()} (info)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "reached_goal": self.reached_goal, "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        comparison: Comparison = ">=" if data["comparison"] == ">=" else "<="
        threshold, goal = data.get("threshold"), data.get("goal")
        return cls(
            name=str(data["name"]),
            value=_number(data["value"]),
            threshold=None if threshold is None else float(threshold),
            comparison=comparison,
            goal=None if goal is None else float(goal),
            enforced=bool(data.get("enforced", True)),
            unit=str(data.get("unit", "x")),
        )


def meets(value: float, bound: float, comparison: Comparison) -> bool:
    """NaN (a missing figure) never meets a bound: every comparison with NaN is false."""
    return value >= bound if comparison == ">=" else value <= bound


def _number(value: Any) -> float:
    """A figure as saved in JSON, where a missing one (NaN) is null."""
    return math.nan if value is None else float(value)
