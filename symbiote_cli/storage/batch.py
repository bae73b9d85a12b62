"""Group commit: transactions that arrive together are written in one commit.

Each ``Storage.update`` is a fetch, a commit and a compare-and-swap push: about ten git processes,
however small the change. A worker answering many callers at once (session reports, heartbeats,
queued requests) would spend its time in git, one caller after another. :class:`BatchWriter` has
one writer thread that drains a queue of pending transactions, fetches once, composes them (each
reads the branch as the ones before it in the batch left it) and applies the lot through one
``Storage.update``. Each caller is answered only after the commit holding its change is pushed;
a transaction that raises fails only its own caller, the others are committed without it.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from symbiote_cli.storage.transactions import Applied, Changes, Transaction

if TYPE_CHECKING:
    from symbiote_cli.storage import layout
    from symbiote_cli.storage.branch import Storage

log = logging.getLogger("symbiote.storage")

MAX_BATCH = 256
"""At most this many transactions in one commit (a bound on its size, not a wait)."""


class Overlay:
    """A read-only view of ``base`` with ``changes`` applied: what a transaction later in a batch sees."""

    def __init__(self, base: layout.Reader, changes: Changes) -> None:
        self._base = base
        self._changes = changes

    def read_json(self, path: str) -> Any | None:
        if path in self._changes:
            return copy.deepcopy(self._changes[path])
        return self._base.read_json(path)

    def list_paths(self, prefix: str = "") -> list[str]:
        folder = prefix.strip("/") + "/" if prefix.strip("/") else ""
        paths = set(self._base.list_paths(prefix))
        for path, value in self._changes.items():
            if not path.startswith(folder):
                continue
            if value is None:
                paths.discard(path)
            else:
                paths.add(path)
        return sorted(paths)


@dataclass
class _Pending:
    tx: Transaction
    message: str
    future: Future[Applied]
    view: layout.Reader | None = None
    changes: Changes | None = None
    error: Exception | None = None


class _Composed:
    """The batch as one transaction: each pending one run on the branch as the earlier ones left it.

    Pure in the sense ``Storage.update`` needs: called again after a rejected push, it recomputes
    every part (and every part's error) on the new base.
    """

    def __init__(self, pending: list[_Pending]) -> None:
        self.pending = pending

    def __call__(self, view: layout.Reader) -> Changes:
        merged: Changes = {}
        for item in self.pending:
            seen = Overlay(view, dict(merged))
            item.view, item.changes, item.error = seen, None, None
            try:
                item.changes = dict(item.tx(seen))
            except Exception as exc:  # noqa: BLE001 - it fails its own caller only
                item.error = exc
                continue
            merged.update(item.changes)
        return merged


class BatchWriter:
    """``Storage.update`` for many callers at once: one writer thread, one commit per batch.

    ``refresh``: fetch once per batch before composing, so that every transaction reads what other
    processes pushed (the worker's callers expect it; ``Storage.update`` alone starts at the local tip).
    The batch is what is queued once that fetch is done.
    """

    def __init__(self, storage: Storage, *, refresh: bool = True, max_batch: int = MAX_BATCH) -> None:
        self.storage = storage
        self.refresh = refresh
        self.max_batch = max(1, max_batch)
        self.commits = 0
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, tx: Transaction, message: str) -> Future[Applied]:
        """Queue ``tx`` for the next batch without waiting: the future is answered once it is pushed.

        For async callers (``asyncio.wrap_future``): nothing is blocked while the batch is written.
        Cancelling the future before the writer takes it drops ``tx``; once taken it cannot be cancelled.
        """
        future: Future[Applied] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the batch writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="symbiote-batch", daemon=True)
                self._thread.start()
            self._queue.put(_Pending(tx, message, future))
        return future

    def apply(self, tx: Transaction, message: str) -> Applied:
        """Apply ``tx`` in the next batch; returns once it is pushed (``transactions.apply``'s answer),
        or raises what ``tx`` raised, or what storing the batch raised."""
        return self.submit(tx, message).result()

    def update(self, tx: Transaction, message: str) -> str | None:
        """Like ``Storage.update``: the commit holding the change, or None when it changed nothing."""
        return self.apply(tx, message).commit

    def close(self) -> None:
        """Finish what is queued, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            # Fetch before draining the queue: callers arriving during the fetch join this batch
            # (they read the fetched branch too) instead of waiting a whole batch for the next one.
            failure: BaseException | None = None
            try:
                if self.refresh:
                    self.storage.refresh()
            except BaseException as exc:  # noqa: BLE001 - told to every caller of the batch
                failure = exc
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            # A caller that gave up before its turn (a cancelled future) is left out of the batch.
            batch = [item for item in batch if item.future.set_running_or_notify_cancel()]
            if batch:
                self._write(batch, failure)
            if stop:
                return

    def _write(self, batch: list[_Pending], failure: BaseException | None) -> None:
        """Store the batch in one commit and answer every caller (``failure``: the fetch's, for all)."""
        composed = _Composed(batch)
        if failure is None:
            try:
                commit = self.storage.update(composed, _message(batch))
            except BaseException as exc:  # noqa: BLE001 - every caller of the batch is told
                failure = exc
        if failure is not None:
            for item in batch:
                item.future.set_exception(failure)
            return
        if commit is not None:
            self.commits += 1
        for item in batch:
            if item.error is not None:
                item.future.set_exception(item.error)
                continue
            assert item.view is not None
            assert item.changes is not None
            item.future.set_result(Applied(commit if item.changes else None, item.view, item.changes))


def _message(batch: list[_Pending]) -> str:
    if len(batch) == 1:
        return batch[0].message
    subjects = "; ".join(item.message.strip().splitlines()[0] for item in batch[:5])
    more = f"; and {len(batch) - 5} more" if len(batch) > 5 else ""
    return f"{len(batch)} changes: {subjects}{more}"


__all__ = ["MAX_BATCH", "BatchWriter", "Overlay"]
