"""Save-to-projected latency of each read model when caught up (a script, not a test).

A service runs its projections in the background, as `serve` does (woken by NOTIFY on
PostgreSQL, by the process's own saves on SQLite). One event at a time is saved
(`handle_events`), and for each read model the time from the save's return to the commit that
projected it is taken (the projector's progress listener, called right after the commit). Events
are spaced out so that each one finds the projections idle, waiting for news.

    python bench/bench_projection_latency.py                   # PostgreSQL, 200 events
    python bench/bench_projection_latency.py --store sqlite --events 500
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.database.url import DatabaseSettings
from adapters.readmodel.projection import Projector
from bench.bench_rebuild import DEFAULT_SERVER, SCOPE, fields, scratch_store
from entrypoints.bootstrap import bootstrap
from entrypoints.heap import freeze_startup_heap
from entrypoints.settings import Settings


class Stamps:
    """When a projector's position reached each value, taken in its own thread after the commit."""

    def __init__(self, projector: Projector) -> None:
        self._projector = projector
        self._reached: list[tuple[int, float]] = []
        self._changed = threading.Condition()
        projector.progress.on_advance(self._advanced)

    def _advanced(self) -> None:
        with self._changed:
            self._reached.append((self._projector.progress.position, time.perf_counter()))
            self._changed.notify_all()

    def time_reaching(self, position: int, timeout: float = 10.0) -> float:
        with self._changed:
            self._changed.wait_for(lambda: any(p >= position for p, _ in self._reached), timeout)
            return next(t for p, t in self._reached if p >= position)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a PostgreSQL URL; a scratch database is made there")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between events")
    args = parser.parse_args()
    logging.getLogger("session_events.sessions").disabled = True  # a note for each error_occurred
    with scratch_store(args.store, args.server) as url:
        service = bootstrap(Settings(database=DatabaseSettings.from_url(url)))
        freeze_startup_heap()  # as `serve` does
        try:
            stamps = {name: Stamps(projector) for name, projector in service.projectors.items()}
            number = service.sessions.create_session(SCOPE).number
            latencies: dict[str, list[float]] = {name: [] for name in stamps}
            for k in range(args.events + 10):
                time.sleep(args.pause)
                service.sessions.handle_events(SCOPE, number, [fields(k)])
                saved = time.perf_counter()
                position = service.projection.head()
                for name, stamp in stamps.items():
                    if k >= 10:  # the first few warm the caches and the connections up
                        latencies[name].append(stamp.time_reaching(position) - saved)
        finally:
            service.close()
    print(f"store: {args.store}; {args.events} events, one at a time, {args.pause * 1000:.0f} ms apart")
    for name, values in latencies.items():
        ms = [v * 1000 for v in values]
        print(
            f"save-to-projected {name:<15} p50 {statistics.median(ms):6.2f} ms  p90 {percentile(ms, 0.9):6.2f} ms"
            f"  p99 {percentile(ms, 0.99):6.2f} ms  max {max(ms):6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
