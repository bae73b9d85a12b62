"""Session routes: start a user's session, a run's callbacks, a session's status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from symbiote_cli.worker.context import CALLBACK_PATH
from symbiote_cli.worker.models import CallbackAnswer, SessionAnswer, SessionStatusAnswer
from symbiote_cli.worker.routers.common import ERRORS, UserPath, WorkerDep, authenticated, json_body

router = APIRouter(tags=["sessions"], responses=ERRORS)


@router.post("/start/{userId}", status_code=202)
async def start(request: Request, user_id: UserPath, worker: WorkerDep) -> SessionAnswer:
    """Start a session for a user (local poller, or dispatch symbiote-main.yml in the user's fork)."""
    _body, principal = await authenticated(request, worker)
    return await worker.sessions.start(user_id, str(request.base_url), principal.key)


@router.post(CALLBACK_PATH, openapi_extra=json_body("SessionReport", "StateResultReport"))
async def session_callback(request: Request, worker: WorkerDep) -> CallbackAnswer:
    """A workflow run registers, heartbeats and ends its session, or reports a state's result
    (HMAC-signed, or the run's GitHub Actions OIDC token)."""
    body, principal = await authenticated(request, worker, allow_oidc=True)
    return await worker.callbacks.handle(body, principal)


@router.get("/session/{userId}/status")
async def session_status(request: Request, user_id: UserPath, worker: WorkerDep) -> SessionStatusAnswer:
    """The user's session record (expired when silent) and whether it is live."""
    await authenticated(request, worker)
    return await run_in_threadpool(worker.sessions.status, user_id)
