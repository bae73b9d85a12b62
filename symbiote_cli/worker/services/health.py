"""``GET /health``: is the storage branch reachable, how many sessions are live (cached briefly)."""

from __future__ import annotations

import logging
import threading
import time

from symbiote_cli import __version__
from symbiote_cli.core.errors import StorageError, SymbioteError
from symbiote_cli.storage import layout, transactions
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.models import HealthAnswer, HealthStatus, SessionCounts, StorageHealth
from symbiote_cli.worker.services.pollers import LocalPollers

log = logging.getLogger("symbiote.worker")

HEALTH_CACHE_S = 2.0
"""A health check reads the branch at most this often (load balancers ask many times a second)."""


class HealthService:
    """The worker's health, with the storage half cached for ``cache_s`` seconds."""

    def __init__(self, ctx: WorkerContext, pollers: LocalPollers) -> None:
        self.ctx = ctx
        self.pollers = pollers
        self.cache_s = HEALTH_CACHE_S
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._cached: tuple[float, tuple[bool, int]] | None = None

    def check(self) -> HealthAnswer:
        """``ok`` when the storage branch is reachable, else ``degraded``."""
        reachable, active = self._storage()
        return HealthAnswer(
            status=HealthStatus.OK if reachable else HealthStatus.DEGRADED,
            version=__version__,
            mode=self.ctx.mode,
            storage=StorageHealth(reachable=reachable, branch=self.ctx.settings.storage_branch),
            sessions=SessionCounts(active=active, local_pollers=len(self.pollers.running())),
        )

    def _storage(self) -> tuple[bool, int]:
        """(storage reachable, live sessions on it), from the cache when fresh enough.

        When the cache expires, one caller recomputes it; the callers arriving meanwhile get the
        previous answer instead of each running git (a load balancer asks many times a second).
        """
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        if not self._refreshing.acquire(blocking=cached is None):
            assert cached is not None
            return cached[1]
        try:
            with self._lock:
                cached = self._cached
            now = time.monotonic()
            if cached is not None and now - cached[0] < self.cache_s:
                return cached[1]  # computed by the caller this one waited for
            return self._recompute(now)
        finally:
            self._refreshing.release()

    def _recompute(self, now: float) -> tuple[bool, int]:
        reachable = False
        active = 0
        try:
            storage = self.ctx.refresh_at_most(self.cache_s)
            reachable = storage.reachable()
            for user in transactions.stored_users(storage):
                try:
                    if self.ctx.live(layout.load_session(storage, user)):
                        active += 1
                except StorageError:
                    continue
        except SymbioteError as exc:
            log.warning("health: storage not reachable (%s)", exc.message)
        with self._lock:
            self._cached = (now, (reachable, active))
        return reachable, active
