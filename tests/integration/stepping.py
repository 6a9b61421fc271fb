"""A service that projects only when told, on a store of its own: a test drives each projector
step by step (`catch_up()`, `process_batch()`), so it decides how the log is cut into batches
and when a read model meets an event, and nothing else (no background worker, no append
projecting its own events) touches the projections meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from entrypoints.bootstrap import Service, bootstrap
from tests.conftest import settings_for, store_url


@dataclass(frozen=True)
class Stepped:
    service: Service
    url: str
    """Its `DATABASE_URL`, for the commands a test runs against the same store."""


@contextlib.contextmanager
def stepped_service(kind: str, tmp_path: Path) -> Iterator[Stepped]:
    with store_url(kind, tmp_path) as url:
        service = bootstrap(settings_for(url), run_projection=False)
        service.log.projects_session_events = False
        try:
            yield Stepped(service, url)
        finally:
            service.close()
