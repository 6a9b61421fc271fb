"""Case 1: HTTP batch ingest, 100-event batches from 4 clients, against `COPY` of 100 rows per
transaction from 4 connections (SQLite: `executemany` in one transaction per 100 rows).

Each client writes to a session of its own with sequential calls, as a client of the service
does; the baseline's clients write the same rows, 100 per transaction, to the same database.

Beside them, for information, the ceiling of the log's writes on the same database: the same
number of events saved back to back from one thread, in groups of 400 (what 4 clients' batches
make), decided before the clock starts (`bench/write_ceiling.py`). Every save takes the
log's lock, so no service on this log can ingest faster: the check's threshold is read beside it."""

from __future__ import annotations

from adapters.database.url import DatabaseSettings
from bench import baselines
from bench.cases import CaseResult, Context, progress, timed_case
from bench.events import EventFactory
from bench.load import Connection, posting, run_clients
from bench.stats import Check, Summary, ratio
from bench.stores import Store
from bench.write_ceiling import save_rates
from entrypoints.bootstrap import bootstrap
from entrypoints.settings import Settings

CLIENTS = 4
BATCH = 100


@timed_case
def run(context: Context) -> CaseResult:
    result = CaseResult(1, f"HTTP batch ingest: {BATCH}-event batches, {CLIENTS} clients")
    config, factory = context.config, EventFactory()
    app_rates, base_rates, client_cpu = [], [], []
    with context.stores.fresh("ingest") as store:
        with context.server_on(store, result) as (server, token):
            baseline = baselines.for_store(store)
            admin = Connection(server.port, token)
            expected: dict[int, int] = {}
            next_baseline_session = 1

            def app_pass() -> float:
                sessions = [admin.create_session() for _ in range(CLIENTS)]
                plans = [
                    [
                        (f"/api/sessions/{s}/events/batch", factory.batch_body(BATCH))
                        for _ in range(config.ingest_batches_per_client)
                    ]
                    for s in sessions
                ]
                run_ = run_clients([posting(server.port, token, plan) for plan in plans])
                for s in sessions:
                    expected[s] = BATCH * config.ingest_batches_per_client
                client_cpu.append(run_.client_cpu_share)
                return CLIENTS * BATCH * config.ingest_batches_per_client / run_.seconds

            for rep in range(config.repetitions):
                progress(f"case 1, repetition {rep + 1}/{config.repetitions}: baseline, then the service")
                rows = []
                for _ in range(CLIENTS):
                    events = factory.events(BATCH * config.ingest_batches_per_client)
                    rows.append(baselines.rows_of(next_baseline_session, events))
                    next_baseline_session += 1
                base_run = baseline.bulk(rows, BATCH)
                base_rates.append(sum(map(len, rows)) / base_run.seconds)
                app_rates.append(app_pass())
            with context.profiled(server, "case1-ingest"):
                if context.profile:
                    app_pass()
            for session, count in expected.items():
                recorded = admin.get_json(f"/api/sessions/{session}")["data"]["event_count"]
                if recorded != count:
                    raise AssertionError(f"session {session} holds {recorded} events, {count} were sent")
            admin.close()
        ceiling = write_ceiling(context, store, factory)  # the server stopped, its store still here

    app, base = Summary.of(app_rates, "events/s"), Summary.of(base_rates, "rows/s")
    result.figures["batch ingest"] = app
    result.figures["load generator CPU (share of a core)"] = Summary.of(client_cpu, "cores")
    result.baseline[f"{baseline.name_bulk}, {BATCH} rows/transaction, {CLIENTS} clients"] = base
    result.checks.append(
        Check(
            "batch ingest / bulk baseline",
            ratio(app.median, base.median),
            0.35,
            ">=",
            goal=0.5,
            enforced=context.enforced,
        )
    )
    saves, transactions = Summary.of(ceiling[0], "events/s"), Summary.of(ceiling[1], "events/s")
    result.figures["ceiling: the log's saves back to back, 400 a save, one thread"] = saves
    result.figures["ceiling: their transactions alone (what holds the log's lock)"] = transactions
    ceiling_ratio = ratio(saves.median, base.median)
    result.checks.append(Check("the log's saves back to back / bulk baseline", ceiling_ratio, None, ">="))
    context.learnt["batch_events_per_second"] = app.median
    return result


def write_ceiling(context: Context, store: Store, factory: EventFactory) -> tuple[list[float], list[float]]:
    """Saves and transactions per second, a figure each repetition, on the case's own store
    (its server stopped; the read models caught up, so that saves write `session_events`
    inline as the service's do)."""
    events = CLIENTS * BATCH * context.config.ingest_batches_per_client
    service = bootstrap(Settings(database=DatabaseSettings.from_url(store.url)), run_projection=False)
    saves: list[float] = []
    transactions: list[float] = []
    try:
        for projector in service.projectors.values():
            projector.catch_up()
        for rep in range(context.config.repetitions):
            progress(f"case 1, repetition {rep + 1}/{context.config.repetitions}: the log's write ceiling")
            save, transaction = save_rates(service, factory.events(events), CLIENTS * BATCH, inline=True)
            saves.append(save)
            transactions.append(transaction)
    finally:
        service.close()
    return saves, transactions
