"""Case 1: HTTP batch ingest, 100-event batches from 4 clients, against `COPY` of 100 rows per
transaction from 4 connections (SQLite: `executemany` in one transaction per 100 rows).

Each client writes to a session of its own with sequential calls, as a client of the service
does; the baseline's clients write the same rows, 100 per transaction, to the same database."""

from __future__ import annotations

from bench import baselines
from bench.cases import CaseResult, Context, progress, timed_case
from bench.events import EventFactory
from bench.load import Connection, posting, run_clients
from bench.stats import Check, Summary, ratio

CLIENTS = 4
BATCH = 100


@timed_case
def run(context: Context) -> CaseResult:
    result = CaseResult(1, f"HTTP batch ingest: {BATCH}-event batches, {CLIENTS} clients")
    config, factory = context.config, EventFactory()
    app_rates, base_rates, client_cpu = [], [], []
    with context.serving("ingest", result) as (store, server, token):
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
                rows.append(
                    baselines.rows_of(next_baseline_session, factory.events(BATCH * config.ingest_batches_per_client))
                )
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
    context.learnt["batch_events_per_second"] = app.median
    return result
