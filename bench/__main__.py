"""`python -m bench`: every case, each beside its same-run raw baseline, then report.json,
chart.png and (with --publish) docs/performance.md and docs/performance.png. See bench/README.md."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench import machine, profiling, report
from bench.cases import Case, CaseResult, Context, progress
from bench.config import Config
from bench.load import measure_ceiling
from bench.server import Server
from bench.stats import Check
from bench.stores import DEFAULT_ADMIN_URL, Stores

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def cases() -> dict[int, Case]:
    from bench.cases import ingest, lag, long_session, memory, projection, reads, single

    return {
        1: ingest.run,
        2: single.run,
        3: long_session.run,
        4: projection.run,
        5: lag.run,
        6: reads.run,
        7: memory.run,
    }


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every case, smaller: about a minute; indicative only")
    parser.add_argument("--store", choices=["postgres", "sqlite", "both"], default="both")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_ADMIN_URL,
        help=f"PostgreSQL server to create the bench_<pid>_<n> databases on (default {DEFAULT_ADMIN_URL})",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes of each server (default 1)")
    parser.add_argument("--out", type=Path, help="where report.json and chart.png go (default bench/results/<time>)")
    parser.add_argument("--cases", default="1,2,3,4,5,6,7", help="which cases, e.g. 1,2 (default all)")
    parser.add_argument("--profile", action="store_true", help="py-spy profiles of the server in the write cases")
    parser.add_argument(
        "--publish", action="store_true", help="also write docs/performance.md and docs/performance.png"
    )
    parser.add_argument("--render-only", type=Path, metavar="REPORT_JSON", help="re-render the docs from a report")
    args = parser.parse_args(argv)
    try:
        args.case_numbers = sorted({int(n) for n in args.cases.split(",") if n.strip()})
    except ValueError:
        parser.error(f"--cases: {args.cases!r} is not a list of case numbers such as 1,2,5")
    unknown = [n for n in args.case_numbers if n not in range(1, 8)]
    if unknown or not args.case_numbers:
        parser.error(f"--cases: the cases are 1 to 7 (got {args.cases!r})")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.render_only:
        saved = report.load(args.render_only)
        (args.render_only.parent / "performance.md").write_text(report.render_markdown(saved, "chart.png"))
        if args.publish:
            publish(saved, args.render_only.parent / "chart.png")
        return 0
    if args.profile and (why := profiling.available()):
        print(f"bench: --profile: {why}", file=sys.stderr)
        return 2
    if args.publish and importlib.util.find_spec("matplotlib") is None:
        print("bench: --publish needs the chart: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    if args.store != "sqlite" and (problem := postgres_problem(args.database_url)):
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, interrupt)
    started = time.perf_counter()
    out = args.out or ROOT / "bench" / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    config = Config.for_run(quick=args.quick)
    kinds = ["postgres", "sqlite"] if args.store == "both" else [args.store]
    data: dict[str, Any] = {
        "machine": machine.describe(args.database_url if "postgres" in kinds else None),
        "run": {
            "command": " ".join(["python -m bench", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
            "quick": args.quick,
            "workers": args.workers,
            "cases": args.case_numbers,
            "config": config.as_dict(),
        },
        "stores": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="session-events-bench-"))
    try:
        for kind in kinds:
            stores = Stores(kind, args.database_url, scratch)
            context = Context(kind, stores, config, args.workers, out, profile=args.profile)
            print(f"bench: {kind}", file=sys.stderr, flush=True)
            results: list[CaseResult] = []
            ceiling = load_generator_ceiling(context)
            for number in args.case_numbers:
                progress(f"case {number} on {kind}")
                results.append(run_case(number, context))
            data["stores"][kind] = {"load_generator": ceiling, "cases": [r.as_dict() for r in results]}
            stores.drop_all()
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped and scratch databases dropped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    data["machine"]["load_average_after"] = list(os.getloadavg())
    data["run"]["wall_seconds"] = time.perf_counter() - started
    (out / "report.json").write_text(report.to_json(data))
    chart_path = out / "chart.png"
    drawn = draw_chart(data, chart_path)
    (out / "performance.md").write_text(report.render_markdown(data, "chart.png" if drawn else None))
    if args.publish:
        publish(data, chart_path)
    print(f"bench: report in {out} ({data['run']['wall_seconds']:.0f} s)", file=sys.stderr)
    print((out / "performance.md").read_text())
    crashed = [case["number"] for store in data["stores"].values() for case in store["cases"] if case.get("error")]
    if crashed:
        print(f"bench: case(s) {', '.join(map(str, crashed))} failed before the end (see the report)", file=sys.stderr)
    return 1 if crashed else 0


def run_case(number: int, context: Context) -> CaseResult:
    """One case; a case that breaks (a server error, a lost event) is reported as such and the
    run goes on, so that one failure does not cost the other cases' figures."""
    started = time.perf_counter()
    try:
        return cases()[number](context)
    except Exception as error:
        traceback.print_exc()
        failed = CaseResult(number, f"case {number} did not finish", seconds=time.perf_counter() - started)
        failed.error = f"{type(error).__name__}: {error}"[:2000]
        failed.notes.append(f"failed: {failed.error}")
        failed.checks.append(Check("ran to the end", math.nan, 1.0, ">=", unit="count"))
        return failed


def draw_chart(data: dict[str, Any], path: Path) -> bool:
    try:
        from bench import chart
    except ImportError:  # pragma: no cover - matplotlib comes with the `bench` extra
        print("bench: no chart: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return False
    chart.draw(data, path)
    return True


def postgres_problem(url: str) -> str | None:
    """Why the PostgreSQL server cannot be used, said before any case starts."""
    try:
        psycopg.connect(url, connect_timeout=5, autocommit=True).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {url} did not answer ({str(error).strip()}); try --store sqlite"
    return None


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends the run as Ctrl-C does: servers stopped, scratch databases dropped."""
    raise KeyboardInterrupt


def load_generator_ceiling(context: Context) -> dict[str, Any]:
    """The client's own cost, measured against the server's lightest route, 16 threads."""
    with context.stores.fresh("ceiling") as store:
        server = Server(store.url, store.workdir, context.workers)
        try:
            ceiling = measure_ceiling(server.port, 16, context.config.ceiling_requests)
        finally:
            server.stop()
    return {
        "clients": ceiling.clients,
        "requests": ceiling.requests,
        "health_rate": ceiling.health_rate,
        "client_cpu_per_request_us": ceiling.client_cpu_per_request_us,
        "client_ceiling": ceiling.client_ceiling,
    }


def publish(data: dict[str, Any], chart_path: Path) -> None:
    shutil.copyfile(chart_path, DOCS / "performance.png")
    (DOCS / "performance.md").write_text(report.render_markdown(data, "performance.png"))


if __name__ == "__main__":
    sys.exit(main())
