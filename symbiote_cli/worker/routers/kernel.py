"""The UbiquityOS kernel's form: ``POST /``, and the kernel's inputs posted to ``/state/{stateId}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker import checks
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.facade import Worker
from symbiote_cli.worker.models import KernelAnswer
from symbiote_cli.worker.routers.common import ERRORS, WorkerDep, json_body, read_body

router = APIRouter(tags=["kernel"])


async def kernel_answer(request: Request, worker: Worker, data: dict[str, Any], state_id: str | None) -> KernelAnswer:
    """Act on the kernel's signed inputs (its RSA signature is the authentication)."""
    header = request.headers.get("x-hub-signature-256")
    return await run_in_threadpool(worker.kernel.handle, data, state_id, header, str(request.base_url))


@router.post("/", responses=ERRORS, openapi_extra=json_body("KernelInputs"))
async def kernel_post(request: Request, worker: WorkerDep) -> KernelAnswer:
    """The UbiquityOS kernel's worker form (RSA-signed inputs): 200 {stateId, output} or 400."""
    data = checks.try_parse_object(await read_body(request))
    if data is None or not checks.is_kernel_form(data):
        raise ApiError(400, "invalid_body", "POST / takes the UbiquityOS kernel's signed inputs")
    return await kernel_answer(request, worker, data, None)
