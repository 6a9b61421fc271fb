"""The sizes of a run. The full run is what docs/performance.md shows; `--quick` exercises every
case in about a minute, with figures too small and too noisy to judge the service by."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Config:
    quick: bool
    repetitions: int
    """Of every measurement that has a baseline; the figure is their median."""
    ceiling_requests: int
    ingest_batches_per_client: int
    """Case 1: 100-event batches each of the 4 clients sends per repetition."""
    single_events: int
    """Case 2: single events per repetition, shared among the 4 (or 16) clients."""
    long_session_events: int
    """Case 3: events the long session holds before it is measured."""
    long_session_pairs: int
    """Case 3: batches timed on each session, long and fresh taking turns."""
    projection_events: int
    """Case 4: events in the log the projections catch up with and rebuild from."""
    lag_seconds: float
    """Case 5: how long the sustained load runs."""
    read_sizes: tuple[int, ...]
    """Case 6: read-model sizes (rows) at which reads are timed."""
    read_requests: int
    """Case 6: requests per kind of read, per repetition."""
    memory_sessions: tuple[int, int]
    """Case 7: sessions before the first memory reading, then in all before the second."""
    memory_events: int
    """Case 7: events added to existing sessions before the last reading."""

    @classmethod
    def for_run(cls, *, quick: bool) -> Config:
        if quick:
            return cls(
                quick=True,
                repetitions=2,
                ceiling_requests=400,
                ingest_batches_per_client=5,
                single_events=120,
                long_session_events=10_000,
                long_session_pairs=5,
                projection_events=5_000,
                lag_seconds=4.0,
                read_sizes=(10_000, 50_000),
                read_requests=25,
                memory_sessions=(200, 600),
                memory_events=5_000,
            )
        return cls(
            quick=False,
            repetitions=3,
            ceiling_requests=3_000,
            ingest_batches_per_client=40,
            single_events=1_000,
            long_session_events=100_000,
            long_session_pairs=15,
            projection_events=60_000,
            lag_seconds=30.0,
            read_sizes=(10_000, 100_000, 1_000_000),
            read_requests=100,
            memory_sessions=(2_500, 7_500),
            memory_events=100_000,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
