"""The most the session log can write on PostgreSQL, whatever happens before the save (a script,
not a test).

Every save takes the log's exclusive lock, which keeps notification ids in commit order (readers
never skip an event: ADR 0014), so one save runs at a time, whichever process makes it. Saves
made back to back from one thread, with nothing else to do (no HTTP, no validation, no deciding:
the events are decided before the clock starts), therefore measure a ceiling that group commit,
more committers or more worker processes cannot pass. The batch-ingest check of `python -m bench`
(case 1) compares the service with `COPY` of the same rows from 4 connections: this script puts
the ceiling beside that same baseline, so that the two figures can be read together.

Each round, on a fresh scratch database:
- save: `EventSourcedSessionStore.save_changes` of groups of `--group` events (4 sessions, a
  quarter each, one announcement per session, as case 1's groups hold), back to back: the rows,
  their parameters and the transaction (lock, the group statement, commit). Once with the
  `session_events` rows written by the same transaction (the projection live and caught up, as
  in service) and once without (the projection's worker would write them after, outside the lock);
- `COPY`: the same events as rows `(session_id, sequence, id, event_type, sent_at, data)`, 100
  per transaction from 4 connections (case 1's baseline), and `--group` per transaction from one.

    python bench/bench_write_ceiling.py                      # 40,000 events a figure, 3 rounds
    python bench/bench_write_ceiling.py --events 8000 --repeat 1
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from adapters.database.url import DatabaseSettings
from bench.baselines import TABLE, PostgresBaseline, Row, chunks, rows_of
from bench.bench_rebuild import DEFAULT_SERVER, scratch_store
from bench.events import EventFactory
from bench.write_ceiling import save_rates
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings


def copy_rate(url: str, baseline: PostgresBaseline, rows: list[Row], clients: int, per_transaction: int) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLE}")
    per_client = [list(part) for part in chunks(rows, -(-len(rows) // clients))]
    run = baseline.bulk(per_client, per_transaction)
    return len(rows) / run.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=40_000, help="events a figure (a round writes each)")
    parser.add_argument("--group", type=int, default=400, help="events a save (case 1's groups hold 200 to 400)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="a PostgreSQL URL; a scratch database is made there")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("session_events.sessions").disabled = True  # a note for each error_occurred
    factory = EventFactory()
    figures: dict[str, list[float]] = {}
    for round_ in range(args.repeat):
        with scratch_store("postgres", args.server) as url:
            service = bootstrap(Settings(database=DatabaseSettings.from_url(url)), run_projection=False)
            try:
                baseline = PostgresBaseline(url)
                for inline in (True, False):
                    events = [factory.event() for _ in range(args.events)]
                    label = "session_events inline" if inline else "session_events after"
                    save, transaction = save_rates(service, events, args.group, inline=inline)
                    figures.setdefault(f"save, {label}", []).append(save)
                    figures.setdefault(f"its transactions alone, {label}", []).append(transaction)
                    rows = [row for k, part in enumerate(chunks(events, 1000)) for row in rows_of(k + 1, list(part))]
                    figures.setdefault("COPY, 100 rows/transaction, 4 connections", []).append(
                        copy_rate(url, baseline, rows, 4, 100)
                    )
                    figures.setdefault(f"COPY, {args.group} rows/transaction, 1 connection", []).append(
                        copy_rate(url, baseline, rows, 1, args.group)
                    )
                    progress = f"round {round_ + 1}, {label}: save {save:,.0f}/s, transactions {transaction:,.0f}/s"
                    print(progress, file=sys.stderr)
            finally:
                service.close()
    reference = statistics.median(figures["COPY, 100 rows/transaction, 4 connections"])
    print(f"PostgreSQL; {args.events:,} events a figure, {args.group} a save; median of {args.repeat} (min, max)")
    for label, rates in figures.items():
        rates.sort()
        print(
            f"{label:<46} {statistics.median(rates):>9,.0f}/s (min {rates[0]:,.0f}, max {rates[-1]:,.0f})"
            f"  {statistics.median(rates) / reference:.2f}x case 1's baseline"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
