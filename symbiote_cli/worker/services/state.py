"""State requests (``POST``/``GET /state/{stateId}``): queue, execute here, or dispatch, once per id."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from symbiote_cli.core.errors import StorageError, SymbioteError
from symbiote_cli.core.models import ActionRequest, ActionStatus
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.flows.inbox import inbox_record
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import SCHEMA_VERSION
from symbiote_cli.wiring import act_once
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import DispatchedRequest, StateAnswer, StateRequest, StateStatus
from symbiote_cli.worker.services.auth import Principal
from symbiote_cli.worker.services.dispatch import Dispatcher, Workflow
from symbiote_cli.worker.services.tenancy import Tenant

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer

log = logging.getLogger("symbiote.worker")


class StateService:
    """Takes each state id once: queued for the user's live session or run here (local mode), or
    recorded on the branch and dispatched to ``symbiote-auth.yml`` in the user's fork (actions mode;
    the run fetches the request from ``GET /state/{stateId}/request``). Results are on the branch;
    what is in flight in this process is cached here for status answers only: whether a state id
    is taken is decided on the branch, so a replay on another replica or after a restart does nothing."""

    def __init__(self, ctx: WorkerContext, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.dispatcher = dispatcher
        self.tenancy = dispatcher.tenancy
        self._lock = threading.Lock()  # guards the three caches below
        # One decision at a time (a state id is taken once); held across awaits, never by a thread.
        self._taking = asyncio.Lock()
        self._running: dict[str, str] = {}  # state id -> user, executing in this process
        self._failures: dict[str, tuple[str, str]] = {}  # state id -> (user, message)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="symbiote-act")

    async def queue(self, state_id: str, data: dict[str, Any], base_url: str) -> tuple[int, StateAnswer]:
        """Symbiote's form: 202 taken now, or 200/202 with ``duplicate`` for a state id seen before.

        A coroutine: git and GitHub calls run in the thread pool, the commit is awaited."""
        state_id = checks.state_id(state_id)
        user, request = self._parse(data)
        tenant = await run_in_threadpool(self.tenancy.resolve, user)
        user = tenant.user if self.ctx.mode is WorkerMode.LOCAL else user
        async with self._taking:
            known = await run_in_threadpool(self._known, state_id)
            if known is not None:
                if str(known.user or user).lower() != user.lower():
                    raise ApiError(409, "state_conflict", f"state {state_id} belongs to another user")
                finished = known.status in (StateStatus.DONE, StateStatus.FAILED)
                return (200 if finished else 202), known.model_copy(update={"duplicate": True})
            with self._lock:
                self._failures.pop(state_id, None)
            return 202, await self._take(tenant, user, state_id, request, base_url)

    def status(self, state_id: str) -> StateAnswer:
        """What is known of ``state_id`` (404 when nothing)."""
        state_id = checks.state_id(state_id)
        known = self._known(state_id)
        if known is None:
            raise ApiError(404, "unknown_state", f"no request with state id {state_id[:40]}")
        return known

    def request_for(self, state_id: str, principal: Principal) -> DispatchedRequest:
        """The dispatched request of ``state_id`` for its run: an OIDC caller must be the run of
        ``symbiote-auth.yml`` in the request's user's fork (403 otherwise); 404 when there is none."""
        state_id = checks.state_id(state_id)
        record = transactions.stored_request(self.ctx.fresh(), state_id)
        if record is None:
            raise ApiError(404, "unknown_state", f"no dispatched request with state id {state_id[:40]}")
        user, fork = str(record.get("user", "")), str(record.get("fork", ""))
        if principal.claims is not None:
            principal.claims.bind(user=user, fork=fork, workflows=(Workflow.AUTH.value,))
        kind = "kernel" if record.get("kind") == "kernel" else "action"
        payload = record.get("payload")
        if "sealed" in record:
            if self.ctx.sealer is None:
                raise ApiError(503, "not_configured", "the request is sealed: the worker needs SYMBIOTE_STORAGE_KEY")
            payload = self.ctx.sealer.unseal(str(record["sealed"]), where=f"the request of state {state_id[:40]}")
        if not isinstance(payload, dict):
            raise ApiError(503, "storage_error", f"the request of state {state_id[:40]} is unreadable")
        if kind == "kernel":
            return DispatchedRequest(state_id=state_id, user=user, kind="kernel", inputs=payload)
        return DispatchedRequest(state_id=state_id, user=user, kind="action", request=payload)

    def dispatch(self, tenant: Tenant, state_id: str, kind: str, payload: dict[str, Any], base_url: str) -> bool:
        """Record ``payload`` for ``state_id`` on the branch and dispatch ``symbiote-auth.yml`` in the
        tenant's fork with only the state id and the worker's URL; False when the id was taken before.

        The record is sealed when SYMBIOTE_STORAGE_KEY is set; a kernel request (it carries the
        kernel's installation token) is only ever stored sealed. Blocking (the kernel's route runs
        it in the thread pool); :meth:`dispatch_async` is the same for coroutines."""
        claim, message = self._claim(tenant, state_id, kind, payload)
        if not self.ctx.batch.apply(claim, message).changes:
            return False  # taken before (a replay, another replica): nothing more is dispatched
        self._send(tenant, state_id, base_url)
        return True

    async def dispatch_async(
        self, tenant: Tenant, state_id: str, kind: str, payload: dict[str, Any], base_url: str
    ) -> bool:
        """:meth:`dispatch`, awaiting the commit and running the GitHub call in the thread pool."""
        claim, message = self._claim(tenant, state_id, kind, payload)
        if not (await self.ctx.commit(claim, message)).changes:
            return False
        await run_in_threadpool(self._send, tenant, state_id, base_url)
        return True

    def _claim(
        self, tenant: Tenant, state_id: str, kind: str, payload: dict[str, Any]
    ) -> tuple[transactions.Transaction, str]:
        """The transaction recording the dispatched request (sealed, or refused unsealed when it must be)."""
        assert tenant.fork is not None
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "state_id": state_id,
            "user": tenant.user,
            "fork": tenant.fork,
            "kind": kind,
            "received_at": self.ctx.clock.now(),
            "claim": uuid.uuid4().hex,
        }
        if self.ctx.sealer is not None:
            record["sealed"] = self.ctx.sealer.seal(payload)
        elif kind == "kernel" or payload.get("private"):
            raise ApiError(
                409,
                "needs_storage_key",
                "a kernel request or a private repo's request is kept only sealed: set SYMBIOTE_STORAGE_KEY",
            )
        else:
            record["payload"] = payload
        claim = partial(transactions.claim_request, state_id=state_id, record=record)
        return claim, f"request {state_id[:40]}: dispatch for {tenant.user}"

    def _send(self, tenant: Tenant, state_id: str, base_url: str) -> None:
        """Dispatch ``symbiote-auth.yml`` for a recorded request; on failure the record is released."""
        inputs = {"state_id": state_id, "worker_url": self.ctx.worker_url(base_url)}
        try:
            self.dispatcher.dispatch(tenant, Workflow.AUTH, inputs)
        except ApiError:
            release = partial(transactions.finish_request, state_id=state_id, record=None)
            with contextlib.suppress(SymbioteError):
                self.ctx.batch.update(release, f"request {state_id[:40]}: dispatch failed")
            raise
        log.info("%s: state %s dispatched (%s in %s)", tenant.user, state_id[:40], Workflow.AUTH.value, tenant.fork)

    async def record_result(self, state_id: str, record: dict[str, Any] | None, principal: Principal) -> None:
        """A dispatched run's result: kept in the outbox once (the first), the request dropped."""
        stored = await run_in_threadpool(lambda: transactions.stored_request(self.ctx.fresh(), state_id))
        if principal.claims is not None:
            if stored is None:
                raise ApiError(404, "unknown_state", f"no dispatched request with state id {state_id[:40]}")
            principal.claims.bind(
                user=str(stored.get("user", "")), fork=str(stored.get("fork", "")), workflows=(Workflow.AUTH.value,)
            )
        if stored is None:
            return  # not a request this worker dispatched: nothing of it is kept here
        finish = partial(transactions.finish_request, state_id=state_id, record=record)
        await self.ctx.commit(finish, f"request {state_id[:40]}: result reported")

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

    async def _take(
        self, tenant: Tenant, user: str, state_id: str, request: ActionRequest, base_url: str
    ) -> StateAnswer:
        if self.ctx.mode is WorkerMode.ACTIONS:
            # The user's fork acts, with the user's own token: the request waits on the branch for
            # the run to fetch it; its body never goes into the workflow's inputs.
            payload = request.model_dump(mode="json")
            if not await self.dispatch_async(tenant, state_id, "action", payload, base_url):
                known = await run_in_threadpool(self._known, state_id)
                if known is not None:
                    return known.model_copy(update={"duplicate": True})
            return StateAnswer(
                state_id=state_id, user=user, status=StateStatus.DISPATCHED, dispatched_at=self.ctx.clock.now()
            )
        session = await run_in_threadpool(lambda: layout.load_session(self.ctx.storage, user))
        if self.ctx.live(session) and (not request.private or self.ctx.sealer is not None):
            assert session is not None
            await self._queue(user, state_id, request)
            return StateAnswer(state_id=state_id, user=user, status=StateStatus.QUEUED, session_id=session.id)
        with self._lock:
            self._running[state_id] = user
        self._executor.submit(self._execute, user, state_id, request)
        return StateAnswer(state_id=state_id, user=user, status=StateStatus.RUNNING)

    async def _queue(self, user: str, state_id: str, request: ActionRequest) -> None:
        record = inbox_record(user, state_id, request, self.ctx.clock.now(), self.ctx.sealer)
        queue = partial(transactions.queue_request, user=user, state_id=state_id, record=record)
        await self.ctx.commit(queue, f"inbox {user}: state {state_id[:40]}")
        log.info("%s: state %s queued for the live session", user, state_id[:40])

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
                claims=self.ctx.claims,
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
            failure = self._failures.get(state_id)
        stored = stored_answer(self.ctx.fresh(), state_id, self.ctx.sealer)
        if stored is not None:
            return stored
        if running is not None:
            return StateAnswer(state_id=state_id, user=running, status=StateStatus.RUNNING)
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
        dispatched = transactions.stored_request(reader, state_id)
        if dispatched is None:
            return None
        when = dispatched.get("received_at")
        return StateAnswer(
            state_id=state_id,
            user=str(dispatched.get("user", "")) or None,
            status=StateStatus.DISPATCHED,
            dispatched_at=float(when) if isinstance(when, int | float) else None,
        )
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
