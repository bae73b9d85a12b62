"""Open routes: ``GET /health`` and the plugin manifest (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from symbiote_cli.core.kernel import plugin_manifest
from symbiote_cli.worker.models import HealthAnswer, HealthStatus, Manifest
from symbiote_cli.worker.routers.common import WorkerDep

router = APIRouter()


@router.get(
    "/health",
    tags=["worker"],
    responses={503: {"model": HealthAnswer, "description": "degraded: the storage branch is not reachable"}},
)
async def health(response: Response, worker: WorkerDep) -> HealthAnswer:
    """Status, version, whether storage is reachable, active session count. No auth."""
    answer = await run_in_threadpool(worker.health.check)
    if answer.status is not HealthStatus.OK:
        response.status_code = 503
    return answer


@router.get("/manifest.json", tags=["kernel"])
async def manifest() -> Manifest:
    """The UbiquityOS plugin manifest. No auth."""
    return Manifest.model_validate(plugin_manifest())
