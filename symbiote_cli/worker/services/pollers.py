"""Local mode: one in-process ``Poller`` per user, each a cache of the session on the branch."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from symbiote_cli.core import sessions
from symbiote_cli.core.errors import SupersededError, SymbioteError
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.storage import layout
from symbiote_cli.wiring import PollRequest, build_poller
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import PollerInfo

if TYPE_CHECKING:
    from symbiote_cli.core.models import ActionRequest, ActionResult, Item, RouteDecision, Session
    from symbiote_cli.flows.poll import CycleReport, Poller

log = logging.getLogger("symbiote.worker")

SUPERSEDED = "superseded by a newer session"


@dataclass
class PollerHandle:
    """One in-process poller of one user (a cache: the session record is on the branch)."""

    user: str
    session_id: str
    stop: threading.Event
    started_at: float
    poller: Poller | None = None
    thread: threading.Thread | None = None
    cycles: int = 0
    last_cycle_at: float | None = None
    superseded: bool = False
    exit_reason: str | None = None
    finished_at: float | None = None
    last_owner_check: float = 0.0

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def describe(self) -> PollerInfo:
        return PollerInfo(
            session_id=self.session_id,
            running=self.running,
            cycles=self.cycles,
            last_cycle_at=self.last_cycle_at,
            superseded=self.superseded,
            exit_reason=self.exit_reason,
            finished_at=self.finished_at,
        )


class WorkerObserver:
    """The poll loop's observer inside the worker: log lines, and the superseded check."""

    def __init__(self, pollers: LocalPollers, handle: PollerHandle) -> None:
        self.pollers = pollers
        self.handle = handle

    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        self.handle.cycles = report.number
        self.handle.last_cycle_at = self.pollers.ctx.clock.now()
        self.pollers.check_owner(self.handle)

    def decided(self, event: Item, decision: RouteDecision) -> None:
        log.debug("%s: event %s %s -> %s", self.handle.user, event.id, event.type, decision.route.value)

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None:
        repo = repo_key(request.repo) if request.private else request.repo
        log.info("%s: %s on %s: %s", self.handle.user, request.kind.value, repo, result.status.value)

    def warn(self, message: str) -> None:
        log.warning("%s: %s", self.handle.user, message)


class LocalPollers:
    """Starts, watches and stops the worker's in-process pollers (keyed by lower-cased login)."""

    def __init__(self, ctx: WorkerContext, owner_check_interval: float | None = None) -> None:
        self.ctx = ctx
        # How often a running poller checks that its session is still the user's one live
        # session (a newer one may have superseded it while the poller sees no new events).
        self.owner_check_interval = (
            owner_check_interval if owner_check_interval is not None else min(30.0, 5 * ctx.settings.interval)
        )
        self._lock = threading.Lock()
        self._handles: dict[str, PollerHandle] = {}

    def get(self, user: str) -> PollerHandle | None:
        with self._lock:
            return self._handles.get(user.lower())

    def snapshot(self) -> dict[str, PollerHandle]:
        """Every poller this worker started (running or not), by lower-cased login."""
        with self._lock:
            return dict(self._handles)

    def running(self) -> list[PollerHandle]:
        with self._lock:
            return [h for h in self._handles.values() if h.running]

    def launch(self, user: str, *, session_id: str | None = None) -> tuple[Session, bool]:
        """Start a poller with a new session (the caller holds the user's lock).

        Returns the user's session and whether it already existed: when a newer session won the
        claim on the branch meanwhile, that one, and no poller runs beside it.
        """
        session_id = session_id or uuid.uuid4().hex
        stop = threading.Event()
        handle = PollerHandle(user=user, session_id=session_id, stop=stop, started_at=self.ctx.clock.now())
        poller = build_poller(
            self.ctx.settings,
            PollRequest(user=user, session_id=session_id, mode=WorkerMode.LOCAL.value, run_id=self.ctx.run_id),
            client=self.ctx.client_factory(user),
            storage=self.ctx.storage,
            clock=self.ctx.clock,
            observer=WorkerObserver(self, handle),
            stop=stop,
        )
        handle.poller = poller
        # Claims the user's session on the branch (one commit); SupersededError when a newer
        # session won the claim meanwhile, answered below.
        with contextlib.suppress(SupersededError):
            poller.start()
        stored = layout.load_session(self.ctx.storage, user)
        if stored is None or stored.id != session_id:
            stop.set()
            if stored is None:
                raise ApiError(503, "storage_error", "the session could not be recorded on the storage branch")
            return stored, True
        thread = threading.Thread(target=self._run, args=(handle,), name=f"symbiote-poll-{user}", daemon=True)
        handle.thread = thread
        with self._lock:
            self._handles[user.lower()] = handle
        thread.start()
        log.info("%s: session %s started (local poller)", user, session_id[:12])
        return stored, False

    def _run(self, handle: PollerHandle) -> None:
        assert handle.poller is not None
        try:
            stats = handle.poller.run()
            reason: str = stats.exit_reason
        except SupersededError:
            handle.superseded = True
            reason = SUPERSEDED
        except SymbioteError as exc:
            reason = f"failed: {exc.message}"
        except Exception as exc:  # noqa: BLE001 - a poller thread must never die silently
            reason = f"crashed ({type(exc).__name__})"
        if handle.superseded:
            reason = SUPERSEDED
        handle.exit_reason = REDACT(reason)
        handle.finished_at = self.ctx.clock.now()
        log.info("%s: poller of session %s exited: %s", handle.user, handle.session_id[:12], handle.exit_reason)

    def check_owner(self, handle: PollerHandle) -> None:
        """Stop ``handle``'s poller once its session is no longer the user's live session."""
        now = time.monotonic()
        if now - handle.last_owner_check < self.owner_check_interval:
            return
        handle.last_owner_check = now
        try:
            storage = self.ctx.refresh_at_most(self.owner_check_interval)
            stored = layout.load_session(storage, handle.user)
        except SymbioteError as exc:
            log.warning("%s: cannot check the session on the storage branch (%s)", handle.user, exc.message)
            return
        if not sessions.still_owner(stored, handle.session_id):
            handle.superseded = True
            handle.stop.set()

    def stop_all(self, *, end_sessions: bool) -> list[PollerHandle]:
        """Ask every running poller to stop, flushing its state; sessions stay live unless ``end_sessions``."""
        handles = self.running()
        for handle in handles:
            if not end_sessions and handle.poller is not None and not handle.superseded:
                handle.poller.session = None  # finish() then flushes without ending the session
            handle.stop.set()
        return handles
