"""`/health`: liveness and readiness, without a token."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import Provide

from entrypoints.http.openapi import ContractOperation, errors_documented
from entrypoints.http.providers import Wired, provide_service
from entrypoints.http.schemas import Health, answer


@get(
    "/health",
    summary="Liveness and readiness",
    description="200 once the service can serve: its store answers.",
    tags=["health"],
    dependencies={"service": Provide(provide_service, sync_to_thread=False)},
    responses=errors_documented(503),
    operation_class=ContractOperation,
    sync_to_thread=True,
)
def health(service: Wired) -> Response[Health]:
    service.check_ready()  # raises StoreUnavailable (503) if the store cannot be reached
    return answer(Health("ok", service.store_kind))
