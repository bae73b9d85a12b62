"""The worker's background work: resume sessions at start, gc periodically, stop cleanly."""

from __future__ import annotations

import logging
import threading
import time

from symbiote_cli.core.errors import SymbioteError
from symbiote_cli.flows import store
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.services.pollers import LocalPollers
from symbiote_cli.worker.services.sessions import SessionService
from symbiote_cli.worker.services.state import StateService

log = logging.getLogger("symbiote.worker")

DEFAULT_GC_INTERVAL = 30 * 60.0
SHUTDOWN_JOIN_S = 15.0


class Maintenance:
    """One background thread (resume, then gc every ``gc_interval`` seconds) and the shutdown."""

    def __init__(
        self,
        ctx: WorkerContext,
        sessions: SessionService,
        pollers: LocalPollers,
        states: StateService,
        *,
        gc_interval: float | None = DEFAULT_GC_INTERVAL,
        resume: bool = True,
        end_sessions_on_shutdown: bool = False,
    ) -> None:
        self.ctx = ctx
        self.sessions = sessions
        self.pollers = pollers
        self.states = states
        self.gc_interval = gc_interval
        self.resume = resume
        self.end_sessions_on_shutdown = end_sessions_on_shutdown
        self.last_gc: float | None = None
        self._stop = threading.Event()
        self._background: threading.Thread | None = None

    def gc(self) -> list[str]:
        """``store gc`` (``transactions.gc``) on the worker's storage, freshly fetched: the deleted paths."""
        settings = self.ctx.settings
        self.ctx.fresh()
        removed = store.gc(
            self.ctx.storage,
            self.ctx.clock,
            retention_days=settings.retention_days,
            heartbeat_interval=settings.heartbeat_interval,
            compact=settings.compact_history,
        )
        self.last_gc = self.ctx.clock.now()
        return removed

    def start_background(self) -> None:
        if self._background is None and (self.resume or self.gc_interval is not None):
            self._background = threading.Thread(target=self._loop, name="symbiote-worker", daemon=True)
            self._background.start()

    def _loop(self) -> None:
        if self.resume:
            try:
                self.sessions.resume()
            except SymbioteError as exc:
                log.warning("could not resume sessions (%s)", exc.message)
        if self.gc_interval is None:
            return
        while not self._stop.is_set():
            try:
                self.gc()
            except SymbioteError as exc:
                log.warning("gc failed (%s); will retry", exc.message)
            if self._stop.wait(self.gc_interval):
                return

    def shutdown(self, timeout: float = SHUTDOWN_JOIN_S) -> None:
        """Stop every poller, flushing its state. Sessions stay live (a restart resumes them)
        unless ``end_sessions_on_shutdown``."""
        self._stop.set()
        handles = self.pollers.stop_all(end_sessions=self.end_sessions_on_shutdown)
        deadline = time.monotonic() + timeout
        for handle in handles:
            if handle.thread is not None:
                handle.thread.join(max(0.0, deadline - time.monotonic()))
        if self._background is not None:
            self._background.join(max(0.0, deadline - time.monotonic()))
        self.states.shutdown()
