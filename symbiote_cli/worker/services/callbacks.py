"""``POST /session/callback``: what workflow runs report: their session, a state's result.

Authenticated by the caller (``Auth``): the operator's signature, or the run's OIDC token, whose
claims are bound here to what it reports: a session report must come from ``symbiote-main.yml`` in
the session user's fork and from the run it names; a state result from ``symbiote-auth.yml`` in the
fork of the request's user. Every report is idempotent by its id: a session report is applied at the
time the run stamped it (within the signature window), so the same report again changes nothing,
and a state result keeps the first one stored.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from symbiote_cli.core.models import SessionStatus
from symbiote_cli.core.signing import DEFAULT_TOLERANCE
from symbiote_cli.storage import transactions
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import SessionReport, SessionReported, StateResultAccepted, StateResultReport
from symbiote_cli.worker.services.auth import Auth, Principal
from symbiote_cli.worker.services.dispatch import Workflow
from symbiote_cli.worker.services.state import StateService


class CallbackService:
    """Verifies a run's report and applies it to the storage branch."""

    def __init__(self, ctx: WorkerContext, auth: Auth, states: StateService) -> None:
        self.ctx = ctx
        self.auth = auth
        self.states = states

    async def handle(self, body: bytes, principal: Principal) -> StateResultAccepted | SessionReported:
        """Apply the report its ``kind`` names (422 for anything else), as ``principal`` may.

        A coroutine: parsing and checks are quick and pure, the wait for the commit is awaited and
        the git reads run in the thread pool, so many runs reporting at once hold no thread each.
        """
        data = checks.parse_object(body)
        kind = data.get("kind")
        if kind == "state_result":
            return await self._state_result(data, principal)
        if kind != "session":
            raise ApiError(422, "invalid_report", 'kind must be "session" or "state_result"')
        return await self._session(data, principal)

    async def _state_result(self, data: dict[str, Any], principal: Principal) -> StateResultAccepted:
        try:
            report = StateResultReport.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_report", checks.validation_message(exc)) from None
        state_id = checks.state_id(report.state_id)
        record = {k: v for k, v in data.items() if k != "kind"}
        has_result = "status" in record and ("result" in record or "sealed" in record)
        # Kept in the worker's outbox (the first result stays); the dispatched request is dropped.
        await self.states.record_result(state_id, record if has_result else None, principal)
        return StateResultAccepted(kind="state_result", state_id=state_id, accepted=True)

    async def _session(self, data: dict[str, Any], principal: Principal) -> SessionReported:
        try:
            reported = SessionReport.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_report", checks.validation_message(exc)) from None
        user = checks.login(reported.user)
        if reported.status is SessionStatus.EXPIRED:
            raise ApiError(422, "invalid_report", "a run reports starting, active, ended or failed, not expired")
        if principal.claims is not None:
            if not reported.run_id:
                raise ApiError(422, "invalid_report", "a run's report names its run_id")
            principal.claims.bind(
                user=user,
                fork=self.states.tenancy.fork_of(user),
                workflows=(Workflow.MAIN.value,),
                run_id=reported.run_id,
            )
        hb = self.ctx.settings.heartbeat_interval
        # The time the run stamped its report, within the signature window: the same report sent
        # again (a retry, a replay on another replica) then moves nothing.
        server_now = self.ctx.clock.now()
        stamped = reported.ended_at if reported.ended_at is not None else reported.heartbeat_at
        now = min(server_now, max(stamped, server_now - DEFAULT_TOLERANCE))
        report = partial(transactions.report_session, user=user, report=reported, now=now, heartbeat_interval=hb)
        try:
            # Group commit: reports arriving together share one fetch, commit and push.
            applied = await self.ctx.commit(report, f"session {reported.id[:12]}: {reported.status.value} reported")
            # The view may read git (a report that changed nothing): off the event loop.
            session = await run_in_threadpool(
                partial(transactions.reported_session, applied.view, user, reported, now=now, heartbeat_interval=hb)
            )
        except transactions.InvalidReportError as exc:
            raise ApiError(422, "invalid_report", exc.message) from None
        return SessionReported(kind="session", live=self.ctx.live(session), session=session)
