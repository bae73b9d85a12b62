"""Open routes: ``GET /health`` and the plugin manifest.

``/health`` tells a stranger only ``{"status": …}``; the details (version, mode, storage, session
counts) need the operator's bearer token or a signature.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from symbiote_cli.core.kernel import plugin_manifest
from symbiote_cli.worker.models import HealthAnswer, HealthStatus, Manifest, PublicHealth
from symbiote_cli.worker.routers.common import WorkerDep, target

router = APIRouter()


@router.get(
    "/health",
    tags=["worker"],
    responses={
        503: {"model": HealthAnswer | PublicHealth, "description": "degraded: the storage branch is not reachable"}
    },
)
async def health(request: Request, response: Response, worker: WorkerDep) -> HealthAnswer | PublicHealth:
    """Status only, without auth; with the bearer token or a signature also version, mode, storage and sessions."""
    principal = await run_in_threadpool(worker.auth.optional, request.headers, target(request))
    answer = await run_in_threadpool(worker.health.check)
    if answer.status is not HealthStatus.OK:
        response.status_code = 503
    if principal is None:
        return PublicHealth(status=answer.status)
    return answer


@router.get("/manifest.json", tags=["kernel"])
async def manifest() -> Manifest:
    """The UbiquityOS plugin manifest. No auth."""
    return Manifest.model_validate(plugin_manifest())
