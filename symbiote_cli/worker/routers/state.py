"""State request routes: ``POST /state/{stateId}`` (Symbiote's form or the kernel's), its status, and
``GET /state/{stateId}/request``, where a dispatched run fetches what to do."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker import checks
from symbiote_cli.worker.models import DispatchedRequest, ErrorBody, KernelAnswer, StateAnswer
from symbiote_cli.worker.routers.common import (
    ERRORS,
    StatePath,
    WorkerDep,
    authenticated,
    json_body,
    read_body,
    target,
)
from symbiote_cli.worker.routers.kernel import kernel_answer

router = APIRouter(tags=["state"], responses=ERRORS)


@router.post(
    "/state/{stateId}",
    status_code=202,
    response_model=StateAnswer,
    response_model_exclude_unset=True,
    responses={
        200: {
            "model": StateAnswer | KernelAnswer,
            "description": "a state id already finished (duplicate), or the kernel's form acted on",
        }
    },
    openapi_extra=json_body("StateRequest", "KernelInputs"),
)
async def state_post(
    request: Request, response: Response, state_id: StatePath, worker: WorkerDep
) -> StateAnswer | JSONResponse:
    """Queue an action request for the user's session (signed or bearer), or the kernel's signed form."""
    body = await read_body(request)
    data = checks.try_parse_object(body)
    if data is not None and checks.is_kernel_form(data):
        # The kernel's answer, serialized here: the route's response model is Symbiote's form.
        kernel = await kernel_answer(request, worker, data, state_id)
        return JSONResponse(kernel.model_dump(mode="json", by_alias=True))
    await run_in_threadpool(worker.auth.authenticate, body, request.headers, target(request))
    if data is None:
        data = checks.parse_object(body)  # raises the JSON error
    status, answer = await worker.states.queue(state_id, data, str(request.base_url))
    response.status_code = status
    return answer


@router.get("/state/{stateId}", response_model_exclude_unset=True, responses={404: {"model": ErrorBody}})
async def state_get(request: Request, state_id: StatePath, worker: WorkerDep) -> StateAnswer:
    """queued / running / dispatched / done / failed, and the result; 404 when unknown."""
    await authenticated(request, worker)
    return await run_in_threadpool(worker.states.status, state_id)


@router.get("/state/{stateId}/request", response_model_exclude_none=True, responses={404: {"model": ErrorBody}})
async def state_request(request: Request, state_id: StatePath, worker: WorkerDep) -> DispatchedRequest:
    """What a dispatched ``symbiote-auth.yml`` run acts on: the run's OIDC token must come from the
    request's user's fork (or the operator asks). Request bodies never travel in workflow inputs."""
    _body, principal = await authenticated(request, worker, allow_oidc=True)
    return await run_in_threadpool(worker.states.request_for, state_id, principal)
