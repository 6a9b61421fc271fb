"""The cases: each measures one thing the issue asks about, beside its same-run baseline, on a
store and a server of its own (so that no case inherits another's data, cache or memory)."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import profiling
from bench.config import Config
from bench.server import Server
from bench.stats import Check, Summary
from bench.stores import Store, Stores


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)


@dataclass
class CaseResult:
    number: int
    title: str
    figures: dict[str, Summary] = field(default_factory=dict)
    baseline: dict[str, Summary] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    server_peak_rss_mib: float | None = None
    seconds: float = 0.0
    error: str | None = None
    """Why the case stopped before its end, if it did."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "figures": {name: s.as_dict() for name, s in self.figures.items()},
            "baseline": {name: s.as_dict() for name, s in self.baseline.items()},
            "checks": [check.as_dict() for check in self.checks],
            "notes": self.notes,
            "server_peak_rss_mib": self.server_peak_rss_mib,
            "seconds": self.seconds,
            "error": self.error,
        }


@dataclass
class Context:
    """What every case gets: the store kind and its stores, the run's sizes, and what earlier
    cases learnt that later ones need (case 5 paces itself on case 2's throughput)."""

    kind: str
    stores: Stores
    config: Config
    workers: int
    out: Path
    profile: bool = False
    learnt: dict[str, float] = field(default_factory=dict)
    _accounts: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def enforced(self) -> bool:
        """The issue's thresholds are for PostgreSQL, full run; elsewhere they are shown as info."""
        return self.kind == "postgres" and not self.config.quick

    def next_account(self) -> int:
        return next(self._accounts)

    @contextmanager
    def serving(self, label: str, result: CaseResult) -> Iterator[tuple[Store, Server, str]]:
        """A fresh store, a server on it and a token for a scope of the case's own."""
        with self.stores.fresh(label) as store, self.server_on(store, result) as (server, token):
            yield store, server, token

    @contextmanager
    def server_on(self, store: Store, result: CaseResult) -> Iterator[tuple[Server, str]]:
        """A server on `store` and a token for a new scope; the server's peak memory (VmHWM) is
        recorded into `result` when the block ends, and the server stopped."""
        server = Server(store.url, store.workdir, self.workers)
        try:
            account = self.next_account()
            yield server, server.token(account, account)
            result.server_peak_rss_mib = max(result.server_peak_rss_mib or 0.0, server.memory_mib("VmHWM"))
        finally:
            server.stop()

    @contextmanager
    def profiled(self, server: Server, name: str) -> Iterator[None]:
        """With `--profile`, samples the server through the block (an extra, unmeasured pass)."""
        if not self.profile:
            yield
            return
        raw = self.out / f"profile-{self.kind}-{name}.txt"
        with profiling.recording(server.pid, raw):
            yield
        summary = profiling.summarize(raw.read_text().splitlines())
        (self.out / f"profile-{self.kind}-{name}-summary.txt").write_text(summary)


Case = Callable[[Context], CaseResult]


def timed_case(case: Case) -> Case:
    def run(context: Context) -> CaseResult:
        started = time.perf_counter()
        result = case(context)
        result.seconds = time.perf_counter() - started
        return result

    run.__doc__ = case.__doc__
    return run
