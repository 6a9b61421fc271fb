"""Case 7: the server's memory. Its resident set (VmRSS) after many sessions, after three times
as many, and after an event load on top; and its peak (VmHWM), which every case also reports
for its own server.

Memory must not grow with the number of sessions or events: the aggregate cache is bounded
(2,000 sessions), so the first reading is taken with more sessions than that, and anything that
keeps a trace per session or per event shows as growth between the readings. The baseline is
the server's own first reading."""

from __future__ import annotations

from bench.cases import CaseResult, Context, progress, seeding, timed_case
from bench.events import EventFactory
from bench.stats import Check, Summary, ratio

EVENTS_PER_SESSION = 10


@timed_case
def run(context: Context) -> CaseResult:
    config, factory = context.config, EventFactory()
    first, total = config.memory_sessions
    result = CaseResult(7, "server memory as sessions and events grow")
    with context.serving("memory", result) as (_, server, token):
        started = server.memory_mib("VmRSS")
        progress(f"case 7: {first:,} sessions of {EVENTS_PER_SESSION} events")
        sessions = seeding.sessions_with_events(server.port, token, factory, first, EVENTS_PER_SESSION)
        many = server.memory_mib("VmRSS")
        progress(f"case 7: {total - first:,} more sessions")
        sessions += seeding.sessions_with_events(server.port, token, factory, total - first, EVENTS_PER_SESSION)
        more = server.memory_mib("VmRSS")
        per_session = 1000
        loaded = sessions[: max(2, config.memory_events // per_session)]
        half = len(loaded) // 2
        progress(f"case 7: {len(loaded) * per_session:,} more events, in two halves")
        seeding.fill(server.port, token, factory, loaded[:half], per_session)
        after_half = server.memory_mib("VmRSS")
        seeding.fill(server.port, token, factory, loaded[half:], per_session)
        after_events = server.memory_mib("VmRSS")
    result.baseline["RSS after start-up (health checks only)"] = Summary.of([started], "MiB")
    result.baseline[f"RSS after {first:,} sessions"] = Summary.of([many], "MiB")
    result.figures[f"RSS after {total:,} sessions"] = Summary.of([more], "MiB")
    result.figures[f"RSS after {half * per_session:,} more events"] = Summary.of([after_half], "MiB")
    result.figures[f"RSS after {len(loaded) * per_session:,} more events"] = Summary.of([after_events], "MiB")
    result.checks += [
        Check(f"RSS with {total:,} sessions / with {first:,}", ratio(more, many), 1.1, "<=", enforced=context.enforced),
        Check(
            f"RSS after {len(loaded) * per_session:,} events / after {half * per_session:,}",
            ratio(after_events, after_half),
            1.1,
            "<=",
            enforced=context.enforced,
        ),
    ]
    result.notes.append(
        "one reading each (memory is a level, not a rate); 'does not grow' is taken as at most 10% more, the"
        " allocator's noise. The first 1,000-event batches raise the level once (buffers the allocator keeps):"
        " the event check compares the second half of the load with the first, which is growth with events"
    )
    return result
