"""The benchmark's pure parts: percentiles, ratios and verdicts, matching notifications to calls,
the profile summary and the Markdown report. (No matplotlib here: CI installs only `[test]`.)"""

from __future__ import annotations

import json
import math

import pytest

from bench.cases.lag import match
from bench.profiling import summarize
from bench.report import number, render_markdown, to_json
from bench.sse import Notification
from bench.stats import Check, Summary, percentile, ratio


def test_percentile_is_the_nearest_rank_so_always_an_observed_value() -> None:
    values = list(range(100, 0, -1))  # unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert percentile([0.1, 0.2, 5.0], 99) == 5.0  # 3 samples: the p99 is the worst one
    assert percentile([7.0], 50) == 7.0


def test_percentile_refuses_no_values_and_a_rank_outside_0_to_100() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_a_summary_is_the_median_with_the_spread_beside_it() -> None:
    summary = Summary.of([3.0, 1.0, 2.0, 10.0], "ms")
    assert (summary.median, summary.min, summary.max, summary.n) == (2.5, 1.0, 10.0, 4)
    assert Summary.from_dict(summary.as_dict()) == summary


def test_a_ratio_against_a_zero_baseline_is_no_figure() -> None:
    assert ratio(1.0, 4.0) == 0.25
    assert math.isnan(ratio(1.0, 0.0))


@pytest.mark.parametrize(
    ("value", "threshold", "comparison", "verdict"),
    [
        (0.35, 0.35, ">=", "pass"),
        (0.3499, 0.35, ">=", "FAIL"),
        (1.2, 1.2, "<=", "pass"),
        (1.21, 1.2, "<=", "FAIL"),
        (math.nan, 1.2, "<=", "NO FIGURE"),
        (math.nan, 0.35, ">=", "NO FIGURE"),
    ],
)
def test_a_check_passes_only_on_the_right_side_of_its_threshold(
    value: float, threshold: float, comparison: str, verdict: str
) -> None:
    check = Check("c", value, threshold, ">=" if comparison == ">=" else "<=")
    assert check.verdict == verdict
    assert check.passed is (verdict == "pass")


def test_goal_info_and_no_threshold_verdicts() -> None:
    assert Check("c", 0.4, 0.35, ">=", goal=0.5).reached_goal is False
    assert Check("c", 0.6, 0.35, ">=", goal=0.5).reached_goal is True
    assert Check("c", 0.1, 0.35, ">=", enforced=False).verdict == "fail (info)"
    assert Check("c", 0.1, None, ">=").verdict == "-"
    assert Check("c", 0.1, None, ">=").passed is None
    check = Check("lag", 120.0, 150.0, "<=", goal=100.0, enforced=False, unit="ms")
    assert Check.from_dict(check.as_dict()) == check


def notification(session: int, count: int, arrived: float) -> Notification:
    return Notification(session, count, arrived)


def test_each_call_is_matched_to_its_sessions_notification_in_order() -> None:
    answered = {1: [1.0, 2.0], 2: [1.5]}
    received = [notification(1, 1, 1.01), notification(2, 100, 1.45), notification(1, 1, 2.05)]
    lags, missing, unexpected = match(answered, received, {1: 1, 2: 100})
    assert sorted(round(lag, 3) for lag in lags) == [-0.05, 0.01, 0.05]  # early arrival kept, negative
    assert (missing, unexpected) == (0, 0)


def test_a_missing_a_duplicate_a_stranger_and_a_wrong_count_are_all_counted() -> None:
    answered = {1: [1.0, 2.0], 2: [1.0]}
    received = [
        notification(1, 1, 1.1),  # session 1's second call never notified: missing
        notification(2, 1, 1.1),
        notification(2, 1, 1.2),  # a duplicate: unexpected
        notification(3, 1, 1.3),  # nobody wrote to session 3: unexpected
    ]
    lags, missing, unexpected = match(answered, received, {1: 1, 2: 1})
    assert (len(lags), missing, unexpected) == (2, 1, 2)
    _, _, wrong = match({1: [1.0]}, [notification(1, 7, 1.1)], {1: 1})
    assert wrong == 1


def test_the_profile_summary_ranks_frames_by_self_and_total_time() -> None:
    lines = [
        "process 1:python;main (app.py:1);handle (app.py:9);save (store.py:5) 40",
        "process 1:python;main (app.py:1);handle (app.py:9);save (store.py:7) 20",
        "process 1:python;main (app.py:1);handle (app.py:9);parse (json.py:2) 30",
        "main (app.py:2);idle (loop.py:3) 10",
        "garbage",
    ]
    text = summarize(lines, top=2)
    assert text.startswith("100 samples")
    by_self, by_total = text.split("by total time")
    assert by_self.index("save (store.py)") < by_self.index("parse (json.py)")
    assert " 60.0%  save (store.py)" in by_self  # one function's lines added up
    assert "100.0%  main (app.py)" in by_total
    assert "process" not in text.replace("100 samples", "")


def report() -> dict[str, object]:
    check = Check("batch ingest / bulk baseline", 0.05, 0.35, ">=", goal=0.5)
    info = Check("rebuild / COPY", math.nan, None, ">=")
    return {
        "machine": {
            "date": "2026-12-03T20:00:00+00:00",
            "cores": 2,
            "cpu": "a CPU",
            "memory_gib": 23.5,
            "os": "Linux",
            "python": "3.11.7",
            "postgresql": "15.20",
            "sqlite": "3.40.1",
            "libraries": {"eventsourcing": "9.5.6", "uvicorn": None},
            "git_commit": "0123456789abcdef",
            "git_dirty": True,
            "load_average_before": [1.0, 0.5, 0.25],
            "load_average_after": [2.0, 1.0, 0.5],
        },
        "run": {"command": "python -m bench --publish", "quick": False, "workers": 1, "wall_seconds": 612.4},
        "stores": {
            "postgres": {
                "load_generator": {
                    "clients": 16,
                    "requests": 3000,
                    "health_rate": 1800.0,
                    "client_cpu_per_request_us": 120.0,
                    "client_ceiling": 8333.0,
                },
                "cases": [
                    {
                        "number": 1,
                        "title": "HTTP batch ingest",
                        "figures": {"batch ingest": Summary.of([3000.0, 3500.0, 3200.0], "events/s").as_dict()},
                        "baseline": {"COPY": Summary.of([64000.0], "rows/s").as_dict()},
                        "checks": [check.as_dict(), info.as_dict()],
                        "notes": ["a note"],
                        "server_peak_rss_mib": 64.5,
                        "seconds": 30.2,
                    }
                ],
            }
        },
    }


def test_the_report_is_json_without_nan() -> None:
    text = to_json(report())
    assert "NaN" not in text
    assert json.loads(text)["stores"]["postgres"]["cases"][0]["checks"][1]["value"] is None


def test_the_markdown_says_how_it_was_made_and_shows_every_figure_and_verdict() -> None:
    markdown = render_markdown(json.loads(to_json(report())), "performance.png")
    assert "`python -m bench --publish`" in markdown
    assert "(full run, 612 s" in markdown
    assert "Commit `0123456789ab` (with uncommitted changes)" in markdown
    assert "eventsourcing 9.5.6" in markdown and "uvicorn" not in markdown
    assert "![" in markdown and "(performance.png)" in markdown
    assert "| PostgreSQL | 1 | batch ingest / bulk baseline | 0.05 | >= 0.35 | >= 0.50 | **FAIL** |" in markdown
    assert "| PostgreSQL | 1 | rebuild / COPY | n/a | - | - | - |" in markdown
    assert "| batch ingest | 3,200 | 3,000 | 3,500 | events/s |" in markdown
    assert "| baseline: COPY | 64,000 |  |  | rows/s |" in markdown  # one sample: no spread to show
    assert "| server peak RSS (VmHWM) | 64.5 |  |  | MiB |" in markdown
    assert "8,333 requests per CPU-second" in markdown
    assert "- a note" in markdown


def test_numbers_keep_the_digits_that_matter_for_their_unit() -> None:
    assert number(3967.0, "count") == "3,967"
    assert number(0.4123, "ms") == "0.41"  # a sub-millisecond baseline is not shown as 0.0
    assert number(103.94, "ms") == "103.9"
    assert number(87446.2, "rows/s") == "87,446"
    assert number(0.0488, "x") == "0.05"
    assert number(math.nan, "ms") == "n/a"
