"""Case 4: how fast each read model catches up with the log, and is rebuilt from it, against
`COPY` of the same rows the `session_events` projection writes (SQLite: `executemany`), 1,000
rows per transaction as the projector commits.

The log is filled through a real server; then the server stops and the case drives the
components in-process (it is about a component, not the HTTP path): catch-up is
`Service.projectors[name].catch_up()` on a `bootstrap(settings, run_projection=False)` service
whose tracking was reset and tables emptied, rebuild is `Service.rebuild(name)`, as the
`session-events projections rebuild` command runs it. Rates are recorded events per second."""

from __future__ import annotations

import time

from adapters.database.url import DatabaseSettings
from bench import baselines
from bench.cases import CaseResult, Context, progress, seeding, timed_case
from bench.events import EventFactory
from bench.stats import Check, Summary, ratio
from entrypoints.bootstrap import Service, bootstrap
from entrypoints.settings import Settings

EVENTS_PER_SESSION = 1000
ROWS_PER_TRANSACTION = 1000


@timed_case
def run(context: Context) -> CaseResult:
    config = context.config
    events = config.projection_events
    result = CaseResult(4, f"projection catch-up and rebuild, {events:,} events in the log")
    with context.stores.fresh("projection") as store:
        with context.server_on(store, result) as (server, token):
            progress(f"case 4: writing {events:,} events")
            seeding.sessions_with_events(
                server.port, token, EventFactory(), events // EVENTS_PER_SESSION, EVENTS_PER_SESSION
            )
        service = bootstrap(Settings(database=DatabaseSettings.from_url(store.url)), run_projection=False)
        try:
            for projector in service.projectors.values():  # the server may have stopped behind the log
                projector.catch_up()
            recorded = count_rows(service)
            if recorded != events // EVENTS_PER_SESSION * EVENTS_PER_SESSION:
                raise AssertionError(f"the read model holds {recorded} events after seeding")
            baseline = baselines.for_store(store)
            copy_rates: list[float] = []
            catch_up: dict[str, list[float]] = {name: [] for name in service.projectors}
            rebuild: dict[str, list[float]] = {name: [] for name in service.projectors}
            for rep in range(config.repetitions):
                progress(f"case 4, repetition {rep + 1}/{config.repetitions}: baseline, catch-up, rebuild")
                rows, seconds = baseline.copy_table("session_events", ROWS_PER_TRANSACTION)
                copy_rates.append(rows / seconds)
                for name, projector in service.projectors.items():
                    reset(service, name)
                    started = time.perf_counter()
                    projector.catch_up()
                    catch_up[name].append(recorded / (time.perf_counter() - started))
                    if name == "session_events" and count_rows(service) != recorded:
                        raise AssertionError("the caught-up read model lost or duplicated events")
                for name in service.projectors:
                    started = time.perf_counter()
                    service.rebuild(name)
                    rebuild[name].append(recorded / (time.perf_counter() - started))
                if count_rows(service) != recorded:
                    raise AssertionError("the rebuilt read model lost or duplicated events")
        finally:
            service.close()
    copy = Summary.of(copy_rates, "rows/s")
    result.baseline[f"{baseline.name_bulk} of the session_events rows, {ROWS_PER_TRANSACTION} rows/transaction"] = copy
    for name, caught_up in catch_up.items():
        for verb, rates in (("catch-up", caught_up), ("rebuild", rebuild[name])):
            figure = Summary.of(rates, "events/s")
            result.figures[f"{name} {verb}"] = figure
            result.checks.append(Check(f"{name} {verb} / bulk baseline", ratio(figure.median, copy.median), None, ">="))
    result.notes.append(
        "no threshold in the issue: the ratios are shown to compare runs (before/after the projection work)"
    )
    return result


def count_rows(service: Service) -> int:
    return int(service.database.fetch_all("SELECT count(*) AS n FROM session_events")[0]["n"])


def reset(service: Service, name: str) -> None:
    """Back to before the first event: the projection's tables emptied, its position 0."""
    projector, database = service.projectors[name], service.database
    with database.transaction(commit=True) as cursor:
        for table in projector.tables.values():
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute(
            database.statement(
                "UPDATE projection_tracking SET position = 0, state = 'live', error = NULL, failed_position = NULL"
                " WHERE name = %s"
            ),
            (projector.name,),
        )
