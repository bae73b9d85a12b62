"""State requests (``POST``/``GET /state/{stateId}``): queue, execute here, or dispatch, once per id."""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.errors import StorageError, SymbioteError
from symbiote_cli.core.models import ActionRequest, ActionStatus
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.flows.inbox import inbox_record
from symbiote_cli.storage import layout, transactions
from symbiote_cli.wiring import act_once
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import StateAnswer, StateRequest, StateStatus
from symbiote_cli.worker.services.dispatch import Dispatcher, Workflow

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer

log = logging.getLogger("symbiote.worker")


class StateService:
    """Takes each state id once: queued for the user's live session, else run here (local mode) or
    dispatched to ``symbiote-auth.yml`` (actions mode). Results are on the branch; what is in flight
    in this process is cached here."""

    def __init__(self, ctx: WorkerContext, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self._lock = threading.Lock()  # guards the three caches below
        self._taking = threading.Lock()  # one decision at a time: a state id is taken once
        self._running: dict[str, str] = {}  # state id -> user, executing in this process
        self._dispatched: dict[str, tuple[str, float]] = {}  # state id -> (user, when)
        self._failures: dict[str, tuple[str, str]] = {}  # state id -> (user, message)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="symbiote-act")

    def queue(self, state_id: str, data: dict[str, Any], base_url: str) -> tuple[int, StateAnswer]:
        """Symbiote's form: 202 taken now, or 200/202 with ``duplicate`` for a state id seen before."""
        state_id = checks.state_id(state_id)
        user, request = self._parse(data)
        with self._taking:
            known = self._known(state_id)
            if known is not None:
                if str(known.user or user).lower() != user.lower():
                    raise ApiError(409, "state_conflict", f"state {state_id} belongs to another user")
                finished = known.status in (StateStatus.DONE, StateStatus.FAILED)
                return (200 if finished else 202), known.model_copy(update={"duplicate": True})
            with self._lock:
                self._failures.pop(state_id, None)
            return 202, self._take(user, state_id, request, base_url)

    def status(self, state_id: str) -> StateAnswer:
        """What is known of ``state_id`` (404 when nothing)."""
        state_id = checks.state_id(state_id)
        known = self._known(state_id)
        if known is None:
            raise ApiError(404, "unknown_state", f"no request with state id {state_id[:40]}")
        return known

    def forget_dispatched(self, state_id: str) -> None:
        """The dispatched run reported its result (which it stored itself)."""
        with self._lock:
            self._dispatched.pop(state_id, None)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _parse(self, data: dict[str, Any]) -> tuple[str, ActionRequest]:
        try:
            parsed = StateRequest.model_validate(data)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", checks.validation_message(exc)) from None
        user = parsed.user or self.ctx.settings.user
        if not user:
            raise ApiError(422, "missing_user", 'give "user" in the body (or set SYMBIOTE_USER)')
        user = checks.login(user)
        request = ActionRequest.model_validate(parsed.model_dump(mode="json", exclude={"user"}))
        try:
            request.check_complete()
        except ValueError as exc:
            raise ApiError(422, "incomplete_request", str(exc)) from None
        return user, request

    def _take(self, user: str, state_id: str, request: ActionRequest, base_url: str) -> StateAnswer:
        session = layout.load_session(self.ctx.storage, user)
        if self.ctx.live(session) and (not request.private or self.ctx.sealer is not None):
            assert session is not None
            self._queue(user, state_id, request)
            return StateAnswer(state_id=state_id, user=user, status=StateStatus.QUEUED, session_id=session.id)
        if self.ctx.mode is WorkerMode.ACTIONS:
            if request.private:
                raise ApiError(
                    409,
                    "needs_live_session",
                    "a private repo's request is only queued (sealed, with SYMBIOTE_STORAGE_KEY) for a live "
                    "session: workflow inputs would show it; start one with POST /start/{user}",
                )
            self._dispatch(user, state_id, request, base_url)
            return StateAnswer(state_id=state_id, user=user, status=StateStatus.DISPATCHED)
        with self._lock:
            self._running[state_id] = user
        self._executor.submit(self._execute, user, state_id, request)
        return StateAnswer(state_id=state_id, user=user, status=StateStatus.RUNNING)

    def _queue(self, user: str, state_id: str, request: ActionRequest) -> None:
        record = inbox_record(user, state_id, request, self.ctx.clock.now(), self.ctx.sealer)
        queue = partial(transactions.queue_request, user=user, state_id=state_id, record=record)
        self.ctx.storage.update(queue, f"inbox {user}: state {state_id[:40]}")
        log.info("%s: state %s queued for the live session", user, state_id[:40])

    def _dispatch(self, user: str, state_id: str, request: ActionRequest, base_url: str) -> None:
        inputs = {
            "state_id": state_id,
            "request": request.model_dump_json(),
            "callback_url": self.ctx.callback_url(base_url),
        }
        self.dispatcher.dispatch(Workflow.AUTH, inputs)
        with self._lock:
            self._dispatched[state_id] = (user, self.ctx.clock.now())
        log.info("%s: state %s dispatched (%s)", user, state_id[:40], Workflow.AUTH.value)

    def _execute(self, user: str, state_id: str, request: ActionRequest) -> None:
        """No live session, local mode: act now, once per state id (on the worker's own
        storage and client, so no second ``Storage`` races this one on the same clone)."""
        try:
            outcome = act_once(
                self.ctx.settings,
                request,
                state_id=state_id,
                clock=self.ctx.clock,
                storage=self.ctx.storage,
                client=self.ctx.client_factory(user),
                user=user,
            )
            log.info("%s: state %s executed: %s", user, state_id[:40], outcome.result.status.value)
        except Exception as exc:  # noqa: BLE001 - reported through GET /state, never lost
            message = exc.message if isinstance(exc, SymbioteError) else f"unexpected {type(exc).__name__}"
            with self._lock:
                self._failures[state_id] = (user, REDACT(message))
            log.warning("%s: state %s could not be executed: %s", user, state_id[:40], REDACT(message))
        finally:
            with self._lock:
                self._running.pop(state_id, None)

    def _known(self, state_id: str) -> StateAnswer | None:
        """What is known of ``state_id``: inbox (queued), outbox (done/failed), or in-process caches.

        The in-process snapshot is taken before the fetch, so every transition reads without a
        gap: a direct execution writes the outbox before it leaves ``running``.
        """
        with self._lock:
            running = self._running.get(state_id)
            dispatched = self._dispatched.get(state_id)
            failure = self._failures.get(state_id)
        stored = stored_answer(self.ctx.fresh(), state_id, self.ctx.sealer)
        if stored is not None:
            return stored
        if running is not None:
            return StateAnswer(state_id=state_id, user=running, status=StateStatus.RUNNING)
        if dispatched is not None:
            user, when = dispatched
            return StateAnswer(state_id=state_id, user=user, status=StateStatus.DISPATCHED, dispatched_at=when)
        if failure is not None:
            user, message = failure
            return StateAnswer(state_id=state_id, user=user, status=StateStatus.FAILED, error=message)
        return None


def _inbox_entry(reader: layout.Reader, state_id: str) -> tuple[str, dict[str, Any]] | None:
    suffix = f"/inbox/{state_id}.json"
    for path in reader.list_paths("users"):
        if path.endswith(suffix):
            data = reader.read_json(path)
            if isinstance(data, dict):
                return path.split("/")[1], data
    return None


def stored_answer(reader: layout.Reader, state_id: str, sealer: Sealer | None) -> StateAnswer | None:
    """``state_id`` as the branch has it: in an inbox (queued) or in the outbox (done/failed).

    The inbox is read before the outbox: a drain deletes the one in the commit that writes the other.
    """
    entry = _inbox_entry(reader, state_id)
    if entry is not None:
        owner, data = entry
        return StateAnswer(
            state_id=state_id, user=owner, status=StateStatus.QUEUED, received_at=data.get("received_at")
        )
    stored = reader.read_json(layout.outbox_path(state_id))
    if not isinstance(stored, dict):
        return None
    status = str(stored.get("status", ""))
    result = stored.get("result")
    sealed = stored.get("sealed")
    if isinstance(sealed, str) and sealer is not None:
        with contextlib.suppress(StorageError):  # else keep the redacted result
            result = sealer.unseal(sealed, where=f"the sealed result of state {state_id[:40]}")
    return StateAnswer(
        state_id=state_id,
        user=stored.get("user"),
        status=StateStatus.FAILED if status == ActionStatus.FAILED.value else StateStatus.DONE,
        result_status=status,
        finished_at=stored.get("finished_at"),
        result=result,
    )
