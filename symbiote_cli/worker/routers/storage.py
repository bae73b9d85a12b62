"""Storage routes: a user's processed events, and refreshing the kernel registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker.models import EventsAnswer, RegistryAnswer
from symbiote_cli.worker.routers.common import ERRORS, UserPath, WorkerDep, authenticated

router = APIRouter(tags=["storage"], responses=ERRORS)

MAX_EVENTS_LIMIT = 1000


@router.get("/storage/events/{userId}", response_model_exclude_none=True)
async def storage_events(
    request: Request,
    user_id: UserPath,
    worker: WorkerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_LIMIT)] = 50,
    since: Annotated[float | None, Query(ge=0, le=1e11, description="Unix seconds")] = None,
) -> EventsAnswer:
    """Processed events, newest first (private ones redacted unless SYMBIOTE_STORAGE_KEY is set)."""
    await authenticated(request, worker)
    return await run_in_threadpool(worker.events.events, user_id, limit, since)


@router.post("/registry/refresh")
async def registry_refresh(request: Request, worker: WorkerDep) -> RegistryAnswer:
    """Re-resolve which repos the UbiquityOS kernel serves, and store registry.json."""
    await authenticated(request, worker)
    return await run_in_threadpool(worker.registry.refresh)
