"""Case 3: a 100-event batch on a session that already holds 100,000 events, against the same
batch on a fresh session, on the same server, taking turns.

Appending must not slow down as a session grows (the aggregate is cached and snapshotted, and
the idempotency check probes an index per id). The fresh session is the baseline: the same
call, the same server, moments apart, differing only in the session's history."""

from __future__ import annotations

from bench.cases import CaseResult, Context, progress, seeding, timed_case
from bench.events import EventFactory
from bench.load import Connection, posting, run_clients
from bench.stats import Check, Summary, ratio

SEED_BATCH = 1000
BATCH = 100


@timed_case
def run(context: Context) -> CaseResult:
    config, factory = context.config, EventFactory()
    prior = config.long_session_events
    result = CaseResult(3, f"a {BATCH}-event batch on a session with {prior:,} prior events vs a fresh one")
    with context.serving("long-session", result) as (_, server, token):
        client = Connection(server.port, token)
        long = client.create_session()
        progress(f"case 3: building a {prior:,}-event session")
        seeding.fill(server.port, token, factory, [long], prior // SEED_BATCH * SEED_BATCH, SEED_BATCH)
        long_ms: list[float] = []
        fresh_ms: list[float] = []
        for pair in range(config.long_session_pairs):
            fresh = client.create_session()
            turns = [(long, long_ms), (fresh, fresh_ms)]
            for session, times in turns if pair % 2 == 0 else reversed(turns):
                body = factory.batch_body(BATCH)
                times.append(1000 * one_call(server.port, token, f"/api/sessions/{session}/events/batch", body))
        recorded = client.get_json(f"/api/sessions/{long}")["data"]["event_count"]
        expected = prior // SEED_BATCH * SEED_BATCH + BATCH * config.long_session_pairs
        if recorded != expected:
            raise AssertionError(f"the long session holds {recorded} events, {expected} were sent")
        client.close()
    long_summary, fresh_summary = Summary.of(long_ms, "ms"), Summary.of(fresh_ms, "ms")
    result.figures[f"batch on the {prior:,}-event session"] = long_summary
    result.baseline["batch on a fresh session"] = fresh_summary
    result.checks.append(
        Check(
            f"batch on a {prior:,}-event session / on a fresh one",
            ratio(long_summary.median, fresh_summary.median),
            1.2,
            "<=",
            enforced=context.enforced,
        )
    )
    result.notes.append(
        f"{config.long_session_pairs} batches on each, taking turns (which goes first alternates); one client,"
        " a warm server (the session's aggregate is in its cache)"
    )
    return result


def one_call(port: int, token: str, path: str, body: bytes) -> float:
    """One timed POST on a connection already open (its set-up is not timed)."""
    latencies = run_clients([posting(port, token, [(path, body)])]).latencies
    return latencies[0] if latencies else float("nan")
