"""``POST /session/callback``: what workflow runs report (HMAC-signed): their session, a state's result."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from pydantic import ValidationError

from symbiote_cli.core.models import SessionStatus
from symbiote_cli.storage import transactions
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import SessionReport, SessionReported, StateResultAccepted, StateResultReport
from symbiote_cli.worker.services.auth import Auth
from symbiote_cli.worker.services.state import StateService


class CallbackService:
    """Verifies a run's report and applies it to the storage branch."""

    def __init__(self, ctx: WorkerContext, auth: Auth, states: StateService) -> None:
        self.ctx = ctx
        self.auth = auth
        self.states = states

    def handle(self, body: bytes, headers: Mapping[str, str]) -> StateResultAccepted | SessionReported:
        """Verify the signature, then apply the report its ``kind`` names (422 for anything else)."""
        self.auth.verify_signature(body, headers)
        data = checks.parse_object(body)
        kind = data.get("kind")
        if kind == "state_result":
            return self._state_result(data)
        if kind != "session":
            raise ApiError(422, "invalid_report", 'kind must be "session" or "state_result"')
        return self._session(data)

    def _state_result(self, data: dict[str, Any]) -> StateResultAccepted:
        try:
            report = StateResultReport.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_report", checks.validation_message(exc)) from None
        state_id = checks.state_id(report.state_id)
        self.states.forget_dispatched(state_id)
        # The result itself is on the branch (the run wrote the outbox): nothing to store.
        return StateResultAccepted(kind="state_result", state_id=state_id, accepted=True)

    def _session(self, data: dict[str, Any]) -> SessionReported:
        try:
            reported = SessionReport.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_report", checks.validation_message(exc)) from None
        user = checks.login(reported.user)
        if reported.status is SessionStatus.EXPIRED:
            raise ApiError(422, "invalid_report", "a run reports starting, active, ended or failed, not expired")
        hb = self.ctx.settings.heartbeat_interval
        self.ctx.fresh()
        now = self.ctx.clock.now()
        report = partial(transactions.report_session, user=user, report=reported, now=now, heartbeat_interval=hb)
        try:
            applied = transactions.apply(
                self.ctx.storage, report, f"session {reported.id[:12]}: {reported.status.value} reported"
            )
            session = transactions.reported_session(applied.view, user, reported, now=now, heartbeat_interval=hb)
        except transactions.InvalidReportError as exc:
            raise ApiError(422, "invalid_report", exc.message) from None
        return SessionReported(kind="session", live=self.ctx.live(session), session=session)
