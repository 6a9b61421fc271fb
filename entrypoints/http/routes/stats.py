"""`GET /api/sessions/{id}/stats`: what a session's events add up to (the `session_stats` read
model), with the same read-your-writes guarantee as its events."""

from __future__ import annotations

from typing import Any

from litestar import Response, get

from entrypoints.http.openapi import ContractOperation, errors_documented
from entrypoints.http.providers import Caller, Sessions
from entrypoints.http.schemas import StatsEnvelope, answer, stats_out


@get(
    "/sessions/{session_id:int}/stats",
    tags=["stats"],
    summary="A session's statistics",
    description="Counts by event type, first and last `sent_at`, errors, and per tool its calls, completions, "
    "failures and total duration (a `tool_result` completes the earlier `tool_called` with the same "
    "`data.tool_use_id`). Every event recorded before the call is counted. A 503 names the read model if it "
    "has failed (see `session-events projections status`).",
    responses=errors_documented(401, 404, 503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def get_stats(session_id: int, caller: Caller, sessions: Sessions) -> Response[StatsEnvelope]:
    return answer(StatsEnvelope(stats_out(sessions.get_stats(caller, session_id))))


ROUTES: list[Any] = [get_stats]
