"""Sessions: start one per user (a local poller, or a workflow run in actions mode), report, resume."""

from __future__ import annotations

import logging
import threading
from functools import partial
from typing import TypeGuard

from starlette.concurrency import run_in_threadpool

from symbiote_cli.core import sessions
from symbiote_cli.core.errors import StorageError, SymbioteError
from symbiote_cli.core.models import Session
from symbiote_cli.storage import layout, transactions
from symbiote_cli.worker import checks
from symbiote_cli.worker.context import WORKER_RUN_PREFIX, WorkerContext, WorkerMode, holding
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import SessionAnswer, SessionStatusAnswer
from symbiote_cli.worker.services.dispatch import Dispatcher, Workflow
from symbiote_cli.worker.services.pollers import LocalPollers
from symbiote_cli.worker.services.tenancy import Tenant

log = logging.getLogger("symbiote.worker")


class SessionService:
    """One live session per user; starting, reading and resuming them (one user at a time)."""

    def __init__(self, ctx: WorkerContext, pollers: LocalPollers, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.pollers = pollers
        self.dispatcher = dispatcher
        self.tenancy = dispatcher.tenancy
        self._lock = threading.Lock()
        self._user_locks: dict[str, threading.Lock] = {}

    def user_lock(self, user: str) -> threading.Lock:
        with self._lock:
            return self._user_locks.setdefault(user.lower(), threading.Lock())

    def answer(self, session: Session, *, existing: bool) -> SessionAnswer:
        """The session as every reader sees it now (a silent one reads as expired)."""
        current = sessions.effective(session, self.ctx.clock.now(), self.ctx.settings.heartbeat_interval)
        return SessionAnswer(
            session_id=current.id,
            user=current.user,
            mode=current.mode,
            status=current.status,
            existing=existing,
            live=self.ctx.live(session),
            session=current,
        )

    # ------------------------------------------------------------------ POST /start/{userId}

    async def start(self, user: str, base_url: str, request_key: str | None = None) -> SessionAnswer:
        """The user's live session, or a new one (local poller, or ``symbiote-main.yml`` dispatched
        in the user's fork).

        ``request_key`` (from a signed request) becomes the new session's id, so the same signed
        request, replayed here or on another replica, after a restart or not, finds its own session
        and starts nothing more. A coroutine: in actions mode the claim's commit is awaited (no
        thread waits for it), git and GitHub calls run in the thread pool.
        """
        user = checks.login(user)
        if self.ctx.mode is not WorkerMode.ACTIONS:
            return await run_in_threadpool(self._start_local, user, request_key)
        tenant = await run_in_threadpool(self.tenancy.resolve, user)
        async with holding(self.user_lock(user)):
            stored = await run_in_threadpool(lambda: layout.load_session(self.ctx.fresh(), user))
            if self.ctx.live(stored) or (stored is not None and request_key is not None and stored.id == request_key):
                assert stored is not None
                return self.answer(stored, existing=True)
            if stored is not None:
                user = stored.user  # the spelling already on the branch (see ``_start_local``)
            try:
                return await self._start_actions(tenant, user, base_url, request_key)
            except ValueError as exc:
                raise ApiError(409, "conflict", f"the session of {user} changed meanwhile: {exc}") from None

    def _start_local(self, user: str, request_key: str | None) -> SessionAnswer:
        """Local mode: the user's live session, or a new one polled in this process (blocking)."""
        self.tenancy.resolve(user)
        with self.user_lock(user):
            stored = layout.load_session(self.ctx.fresh(), user)
            handle = self.pollers.get(user)
            if self.ctx.live(stored) or (stored is not None and request_key is not None and stored.id == request_key):
                assert stored is not None
                return self.answer(stored, existing=True)
            if handle is not None and handle.running:
                # Our poller's session is over on the branch (expired, ended elsewhere): let it go.
                handle.stop.set()
            if stored is not None:
                # Logins are case-insensitive and stored under the lower-cased name, but sessions
                # compare ``user`` exactly: keep the spelling already on the branch.
                user = stored.user
            try:
                session, existing = self.pollers.launch(user, session_id=request_key)
                return self.answer(session, existing=existing)
            except ValueError as exc:
                raise ApiError(409, "conflict", f"the session of {user} changed meanwhile: {exc}") from None

    async def _start_actions(self, tenant: Tenant, user: str, base_url: str, request_key: str | None) -> SessionAnswer:
        now = self.ctx.clock.now()
        hb = self.ctx.settings.heartbeat_interval
        incoming = sessions.new_session(user, WorkerMode.ACTIONS.value, now, deadline_s=None, session_id=request_key)
        claim = partial(transactions.claim_session, user=user, incoming=incoming, now=now, heartbeat_interval=hb)
        applied = await self.ctx.commit(claim, f"session {incoming.id[:12]}: dispatch for {user}")
        winner = await run_in_threadpool(
            partial(transactions.session_winner, applied.view, user, incoming, now=now, heartbeat_interval=hb)
        )
        if winner.id != incoming.id or not applied.changes:
            # Another session won, or this very session was recorded before (a replay): nothing to start.
            return self.answer(winner, existing=True)
        inputs = {"user": user, "session_id": incoming.id, "callback_url": self.ctx.callback_url(base_url)}
        await run_in_threadpool(self._dispatch, tenant, user, incoming.id, inputs)
        return self.answer(incoming, existing=False)

    def _dispatch(self, tenant: Tenant, user: str, session_id: str, inputs: dict[str, str]) -> None:
        """Dispatch ``symbiote-main.yml`` for a claimed session; marked failed when GitHub refuses."""
        try:
            self.dispatcher.dispatch(tenant, Workflow.MAIN, inputs)
        except ApiError:
            self._fail(user, session_id)
            raise
        log.info("%s: session %s dispatched (%s)", user, session_id[:12], Workflow.MAIN.value)

    def _fail(self, user: str, session_id: str) -> None:
        fail = partial(transactions.fail_session, user=user, session_id=session_id, now=self.ctx.clock.now())
        try:
            self.ctx.batch.update(fail, f"session {session_id[:12]}: dispatch failed")
        except SymbioteError as exc:
            log.warning("%s: could not mark session %s failed (%s)", user, session_id[:12], exc.message)

    # ------------------------------------------------------------------ GET /session/{userId}/status

    def status(self, user: str) -> SessionStatusAnswer:
        """The user's session record (expired when silent), its stored status and our poller."""
        user = checks.login(user)
        stored = layout.load_session(self.ctx.fresh(), user)
        handle = self.pollers.get(user)
        if stored is None:
            raise ApiError(404, "no_session", f"{user} has no session")
        answer = self.answer(stored, existing=True)
        return SessionStatusAnswer(
            session_id=answer.session_id,
            user=answer.user,
            mode=answer.mode,
            status=answer.status,
            live=answer.live,
            session=answer.session,
            stored_status=stored.status,
            poller=handle.describe() if handle is not None else None,
        )

    # ------------------------------------------------------------------ restart

    def resume(self) -> list[str]:
        """Take over every live session a worker started (local mode): a restart resumes polling."""
        if self.ctx.mode is not WorkerMode.LOCAL:
            return []
        storage = self.ctx.fresh()
        resumed: list[str] = []
        for user in transactions.stored_users(storage):
            try:
                stored = layout.load_session(storage, user)
            except StorageError:
                continue
            if not self._resumable(stored) or not self.tenancy.owns(stored.user):
                continue
            with self.user_lock(stored.user):
                handle = self.pollers.get(stored.user)
                if handle is not None and handle.running:
                    continue
                try:
                    self.pollers.launch(stored.user)
                except (SymbioteError, ApiError) as exc:
                    log.warning("%s: could not resume the session (%s)", stored.user, getattr(exc, "message", exc))
                    continue
            resumed.append(stored.user)
        if resumed:
            log.info("resumed sessions of %s", ", ".join(resumed))
        return resumed

    def _resumable(self, stored: Session | None) -> TypeGuard[Session]:
        """A live local session another worker (or an earlier run of this one) polled in-process."""
        return (
            stored is not None
            and stored.mode == WorkerMode.LOCAL
            and (stored.run_id or "").startswith(WORKER_RUN_PREFIX)
            and stored.run_id != self.ctx.run_id
            and self.ctx.live(stored)
        )
