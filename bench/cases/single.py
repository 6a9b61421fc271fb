"""Case 2: HTTP single events from 4 and from 16 clients, against one-row autocommit
transactions from as many connections, with each call's latency (p50, p99).

One session per client, sequential calls: the shape of many IDE sessions each posting as
things happen. The 16-client figure against the 4-client one shows whether the service uses
more concurrency (the group-commit work is meant to make it)."""

from __future__ import annotations

from bench import baselines
from bench.cases import CaseResult, Context, progress, timed_case
from bench.events import EventFactory
from bench.load import Connection, posting, run_clients
from bench.stats import Check, Summary, percentile, ratio


@timed_case
def run(context: Context) -> CaseResult:
    result = CaseResult(2, "HTTP single events, 4 and 16 clients")
    config, factory = context.config, EventFactory()
    rates: dict[int, list[float]] = {4: [], 16: []}
    p50: dict[int, list[float]] = {4: [], 16: []}
    p99: dict[int, list[float]] = {4: [], 16: []}
    base_rates: dict[int, list[float]] = {4: [], 16: []}
    base_p50: dict[int, list[float]] = {4: [], 16: []}
    base_p99: dict[int, list[float]] = {4: [], 16: []}
    client_cpu: list[float] = []
    with context.serving("single", result) as (store, server, token):
        baseline = baselines.for_store(store)
        admin = Connection(server.port, token)
        expected: dict[int, int] = {}
        baseline_session = iter(range(1, 10**9))

        def app_pass(clients: int) -> tuple[float, list[float]]:
            per_client = config.single_events // clients
            sessions = [admin.create_session() for _ in range(clients)]
            plans = [
                [(f"/api/sessions/{s}/events", factory.single_body()) for _ in range(per_client)] for s in sessions
            ]
            run_ = run_clients([posting(server.port, token, plan) for plan in plans])
            expected.update({s: per_client for s in sessions})
            client_cpu.append(run_.client_cpu_share)
            return per_client * clients / run_.seconds, run_.latencies

        for rep in range(config.repetitions):
            for clients in (4, 16):
                progress(
                    f"case 2, repetition {rep + 1}/{config.repetitions}, {clients} clients: baseline, then the service"
                )
                per_client = config.single_events // clients
                rows = [baselines.rows_of(next(baseline_session), factory.events(per_client)) for _ in range(clients)]
                base_run = baseline.single(rows)
                base_rates[clients].append(per_client * clients / base_run.seconds)
                base_p50[clients].append(1000 * percentile(base_run.latencies, 50))
                base_p99[clients].append(1000 * percentile(base_run.latencies, 99))
                rate, latencies = app_pass(clients)
                rates[clients].append(rate)
                p50[clients].append(1000 * percentile(latencies, 50))
                p99[clients].append(1000 * percentile(latencies, 99))
        with context.profiled(server, "case2-single"):
            if context.profile:
                app_pass(16)
        for session, count in expected.items():
            recorded = admin.get_json(f"/api/sessions/{session}")["data"]["event_count"]
            if recorded != count:
                raise AssertionError(f"session {session} holds {recorded} events, {count} were sent")
        admin.close()

    for clients in (4, 16):
        result.figures[f"{clients} clients"] = Summary.of(rates[clients], "events/s")
        result.figures[f"{clients} clients p50"] = Summary.of(p50[clients], "ms")
        result.figures[f"{clients} clients p99"] = Summary.of(p99[clients], "ms")
        result.baseline[f"{baseline.name_single}, {clients} clients"] = Summary.of(base_rates[clients], "rows/s")
        result.baseline[f"{baseline.name_single}, {clients} clients p50"] = Summary.of(base_p50[clients], "ms")
        result.baseline[f"{baseline.name_single}, {clients} clients p99"] = Summary.of(base_p99[clients], "ms")
    result.figures["load generator CPU (share of a core)"] = Summary.of(client_cpu, "cores")
    four, sixteen = result.figures["4 clients"].median, result.figures["16 clients"].median
    base_four = result.baseline[f"{baseline.name_single}, 4 clients"].median
    base_sixteen = result.baseline[f"{baseline.name_single}, 16 clients"].median
    result.checks += [
        Check(
            "single events, 4 clients / one-row transactions",
            ratio(four, base_four),
            0.2,
            ">=",
            goal=0.3,
            enforced=context.enforced,
        ),
        Check(
            "single events, 16 clients / 4 clients",
            ratio(sixteen, four),
            1.8,
            ">=",
            goal=2.0,
            enforced=context.enforced,
        ),
        Check("single events, 16 clients / one-row transactions", ratio(sixteen, base_sixteen), None, ">="),
    ]
    context.learnt["single_events_per_second_4_clients"] = four
    return result
