"""What every service of the worker shares: settings, clock, the storage branch, GitHub clients."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from symbiote_cli.core import sessions
from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import ConfigError
from symbiote_cli.core.models import Session, valid_repo
from symbiote_cli.storage.batch import BatchWriter
from symbiote_cli.wiring import make_claims, make_client, make_sealer, make_storage

if TYPE_CHECKING:
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.flows.execute import Claims
    from symbiote_cli.github.client import GitHubClient
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage
    from symbiote_cli.storage.transactions import Applied, Transaction

WORKER_RUN_PREFIX = "worker-"
"""Sessions a worker polls in-process carry ``run_id = "worker-<instance>"``."""

CALLBACK_PATH = "/session/callback"

ClientFactory = Callable[[str | None], "GitHubClient"]
"""(user, or None for the worker's own calls) -> a GitHub client; tests inject the fake's."""


class WorkerMode(StrEnum):
    """Where sessions poll: in this process, or in a workflow run of the user's fork."""

    LOCAL = "local"
    ACTIONS = "actions"


def default_client_factory(settings: Settings) -> ClientFactory:
    """One client per call, from the configured token (the same for every user)."""

    def make(_user: str | None) -> GitHubClient:
        return make_client(settings)

    return make


def resolve_mode(settings: Settings) -> WorkerMode:
    """``SYMBIOTE_MODE`` when set; else actions when ``SYMBIOTE_REPO`` is set (the older rule), else local."""
    if settings.mode is not None:
        return WorkerMode(settings.mode.value)
    return WorkerMode.ACTIONS if settings.repo else WorkerMode.LOCAL


class WorkerContext:
    """The state one worker's services share; the storage branch is opened on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        storage: Storage | None = None,
        client_factory: ClientFactory | None = None,
        public_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._storage = storage
        self.client_factory = client_factory or default_client_factory(settings)
        url = public_url or settings.worker_url
        self.public_url = url.rstrip("/") if url else None
        if self.public_url is not None and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("the worker's public URL must start with http:// or https://")
        self.sealer: Sealer | None = make_sealer(settings)
        if settings.repo is not None:
            try:
                valid_repo(settings.repo)
            except ValueError:
                raise ConfigError("SYMBIOTE_REPO must be owner/name of a repository") from None
        self.mode = resolve_mode(settings)
        self.instance = uuid.uuid4().hex[:12]
        self.run_id = f"{WORKER_RUN_PREFIX}{self.instance}"
        self._storage_lock = threading.Lock()
        self._claims: Claims | None = None
        self._batch: BatchWriter | None = None
        self._last_refresh = 0.0

    @property
    def storage(self) -> Storage:
        """The storage branch, opened on first use (a failure is retried on the next request)."""
        if self._storage is None:
            with self._storage_lock:
                if self._storage is None:
                    self._storage = make_storage(self.settings, self.clock)
                    self._last_refresh = time.monotonic()
        return self._storage

    @property
    def claims(self) -> Claims:
        """This worker's action claims (issue 14): one per process, so concurrent requests for one
        idempotency key wait for the first; the instance's run id names it on the branch."""
        if self._claims is None:
            storage = self.storage
            with self._storage_lock:
                if self._claims is None:
                    self._claims = make_claims(storage, self.clock, self.run_id, sealer=self.sealer)
        return self._claims

    @property
    def batch(self) -> BatchWriter:
        """The group-commit writer (issue 14): reports, heartbeats and queued requests arriving together
        go into one commit, fetched once; each caller is answered once its change is pushed."""
        if self._batch is None:
            storage = self.storage
            with self._storage_lock:
                if self._batch is None:
                    self._batch = BatchWriter(storage)
        return self._batch

    async def commit(self, tx: Transaction, message: str) -> Applied:
        """``batch.apply`` for the async routes: the caller waits for the push on the event loop,
        not in one of the thread pool's few threads (each would sit idle for a whole batch)."""
        batch = self._batch if self._batch is not None else await run_in_threadpool(lambda: self.batch)
        return await asyncio.wrap_future(batch.submit(tx, message))

    def fresh(self) -> Storage:
        """The storage after a fetch: reads that must see other writers go through here."""
        storage = self.storage
        storage.refresh()
        self._last_refresh = time.monotonic()
        return storage

    def refresh_at_most(self, every: float) -> Storage:
        """Fetch if the last fetch is older than ``every`` seconds (shared by all pollers)."""
        storage = self.storage
        if time.monotonic() - self._last_refresh >= every:
            return self.fresh()
        return storage

    def live(self, session: Session | None) -> bool:
        """Is ``session`` live now (not ended, not past its deadline, not silent)?"""
        return session is not None and sessions.is_live(session, self.clock.now(), self.settings.heartbeat_interval)

    def worker_url(self, base_url: str) -> str:
        """The worker's base URL for runs: the public URL if configured, else the one the request came to."""
        return self.public_url or base_url.rstrip("/")

    def callback_url(self, base_url: str) -> str:
        """Where a workflow run reports."""
        return self.worker_url(base_url) + CALLBACK_PATH


@asynccontextmanager
async def holding(lock: threading.Lock) -> AsyncIterator[None]:
    """Hold a thread lock from a coroutine: taken at once when free, else waited for in a pool thread
    (the event loop never blocks); released by the coroutine (a plain ``Lock`` allows it)."""
    if not lock.acquire(blocking=False):
        await _wait_for(lock)
    try:
        yield
    finally:
        lock.release()


async def _wait_for(lock: threading.Lock) -> None:
    """Take ``lock`` in a pool thread; if the coroutine is cancelled meanwhile, whoever comes second
    (the thread taking it, or the coroutine giving up) lets it go, so it is never left held."""
    guard = threading.Lock()
    state = {"taken": False, "abandoned": False}

    def take() -> None:
        lock.acquire()
        with guard:
            if state["abandoned"]:
                lock.release()
            else:
                state["taken"] = True

    try:
        await run_in_threadpool(take)
    except BaseException:
        with guard:
            if state["taken"]:
                lock.release()
            state["abandoned"] = True
        raise
