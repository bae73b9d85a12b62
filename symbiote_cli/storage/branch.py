"""Symbiote's state: JSON files committed to the ``__STORAGE__`` branch of the user's fork.

``Storage`` is the store: snapshots of commits and their parsed-file cache, reads, migrations
(``meta.json`` / ``SCHEMA_VERSION``), and the one write path, ``Storage.update``: on a rejected
push it fetches and calls ``mutate`` again on the fresh state, which is how concurrent writers
never lose each other's updates. What is written is decided by the named transactions of
``transactions.py``, the only ``mutate``s callers pass. Every git process goes through
``git.GitRepo`` (objects, the private index, compare-and-swap refs and pushes).
"""

from __future__ import annotations

import json
import logging
import pickle
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import SchemaVersionError, StorageConflictError, StorageError
from symbiote_cli.storage.git import FETCH_DEPTH, CommitInfo, GitRepo, PushResult, Runner, blob_sha

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
"""The branch's one format version: ``meta.json`` holds it, every file ``layout`` writes carries it,
and ``MIGRATIONS`` lead from each older version to it."""
META_PATH = "meta.json"
DEFAULT_BRANCH = "__STORAGE__"


# MIGRATIONS[v] turns the whole state at schema version v into version v + 1: it receives
# {path: parsed JSON} of every file except meta.json and returns the new full mapping
# (paths it leaves out are deleted). ``Storage.migrate`` chains them and bumps meta.json.
def _v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
    """Version 2 admits keyed private names (``private-k`` + 32 hex, issue 14) beside the unkeyed ones.

    Nothing to rewrite without the storage key: the bump is what stops a version-1 Symbiote, which
    would not recognise a keyed name and hash it again. The names themselves are re-keyed by
    ``transactions.rekey_private_names``, which needs the key (the poller runs it when one is set).
    """
    return state


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}

CACHE_SIZE = 256
# ... and at most this many bytes of them (pickled): every commit makes a new version of today's
# events file, and 256 versions of a busy day's file would hold tens of megabytes.
CACHE_BYTES = 8 * 1024 * 1024
MAX_PATH_LENGTH = 1024

_COMPONENT_RE = re.compile(r"^[A-Za-z0-9._@:-]{1,255}$")
_MAX_SNAPSHOTS = 4
COMPACTED_TRAILER = "Symbiote-Compacted-From"
"""Trailer of a compaction commit naming the tip it replaced, so writers that pushed before it can
tell a compaction (same data) from a rollback or replacement (``HistoryRewrittenError``)."""
_COMPACTION_LOOKBACK = 64


def validate_path(path: str) -> str:
    """Return ``path`` if it is a safe relative file path, else raise StorageError.

    Event content is attacker controlled; this is the gate that keeps it from ever
    reaching a file path unescaped.
    """
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_LENGTH:
        raise StorageError(f"invalid storage path {path!r}: must be a non-empty relative path")
    for component in path.split("/"):
        if not _COMPONENT_RE.fullmatch(component) or component in {".", ".."} or component.lower() == ".git":
            raise StorageError(
                f"invalid storage path {path!r}: components must match [A-Za-z0-9._@:-]+ (no '..', no leading '/')"
            )
    return path


def _validate_prefix(prefix: str) -> str:
    """Normalise a folder prefix to ``"a/b/"`` (or ``""`` for the root), validating it like a path."""
    stripped = prefix[:-1] if prefix.endswith("/") else prefix
    if not stripped:
        if prefix:
            raise StorageError(f"invalid storage path {prefix!r}: must be relative")
        return ""
    return validate_path(stripped) + "/"


def dumps(value: Any) -> bytes:
    """The one serialisation of stored files: stable bytes, so unchanged data makes no commit."""
    text = json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


class HistoryRewrittenError(StorageError):
    """The remote branch no longer contains the last commit this process pushed (rolled back or replaced).

    Raised once, after the local branch was moved to the remote's state (the old tip kept under
    ``refs/symbiote/unpushed/<branch>``), so that no later write silently undoes the rollback.
    """

    def __init__(self, message: str, *, lost: str, remote_tip: str | None) -> None:
        super().__init__(message)
        self.lost = lost
        self.remote_tip = remote_tip


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The files of one commit: path -> blob sha (regular files only)."""

    tip: str | None
    files: Mapping[str, str]


class StorageView:
    """A read-only view of one commit of the branch, handed to ``update``'s ``mutate``."""

    def __init__(self, storage: Storage, snapshot: _Snapshot) -> None:
        self._storage = storage
        self._snapshot = snapshot

    @property
    def tip(self) -> str | None:
        """The commit this view reads (None before the branch has any commit)."""
        return self._snapshot.tip

    def read_json(self, path: str) -> Any | None:
        """The parsed file, or None when it does not exist."""
        return self._storage._load(self._snapshot, path)

    def list_paths(self, prefix: str = "") -> list[str]:
        """Every file under the folder ``prefix`` (recursively), sorted."""
        return _list(self._snapshot, prefix)

    def exists(self, path: str) -> bool:
        return validate_path(path) in self._snapshot.files


def _list(snapshot: _Snapshot, prefix: str) -> list[str]:
    folder = _validate_prefix(prefix)
    return sorted(p for p in snapshot.files if p.startswith(folder))


Mutation = Callable[[StorageView], Mapping[str, Any | None]]


class Storage:
    """The ``__STORAGE__`` branch of one local repository, optionally mirrored to a remote.

    Thread safe within a process: one re-entrant lock serialises git access (GitPython's
    persistent ``cat-file`` process is not thread safe) and every update.
    """

    def __init__(
        self,
        repo_path: Path,
        branch: str = DEFAULT_BRANCH,
        remote: str | None = None,
        *,
        push_retries: int = 5,
        clock: Clock | None = None,
        fetch_depth: int | None = FETCH_DEPTH,
    ) -> None:
        self._clock: Clock = clock or SystemClock()
        self._git = GitRepo(repo_path, branch, remote, clock=self._clock, fetch_depth=fetch_depth)
        self.repo_path = self._git.repo_path
        self.branch = self._git.branch
        self.ref = self._git.ref
        self.push_retries = max(0, push_retries)
        self._lock = threading.RLock()
        self._never = threading.Event()
        self._opened = False
        self._tip: str | None = None
        self._remote_tip: str | None = None
        self._snapshots: OrderedDict[str, _Snapshot] = OrderedDict()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self.commits_made = 0
        self.push_rejections = 0
        self.last_pushed: str | None = None
        """The last commit this process pushed: every fetch checks the remote still contains it."""
        self._probe: tuple[float, str | None] | None = None  # (when, tip) of the last remote_moved answer

    @property
    def _run(self) -> Runner:
        """``GitRepo.run``, the one way this store runs git; tests and benchmarks wrap it here to see every call."""
        return self._git.run

    @_run.setter
    def _run(self, run: Runner) -> None:
        self._git.run = run  # type: ignore[method-assign]

    # ------------------------------------------------------------------ lifecycle

    @property
    def remote(self) -> str | None:
        """The remote in use (resolved on first use: ``origin`` if present, else local only)."""
        self._git.open()
        return self._git.remote

    @property
    def remote_ref(self) -> str:
        return self._git.remote_ref

    def open(self) -> Storage:
        """Fetch, reconcile local and remote, create the branch if needed, verify it is ours, migrate."""
        with self._lock:
            self._git.open()
            self._check_not_checked_out()
            self._sync(create=True)
            self._verify_meta(self._tip)
            self._opened = True
            self.migrate()
        return self

    def close(self) -> None:
        """Stop GitPython's persistent helper processes."""
        with self._lock:
            self._git.close()
            self._opened = False

    def __enter__(self) -> Storage:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def refresh(self) -> str | None:
        """Fetch and fast-forward to the remote (readers such as the worker call this); returns the tip."""
        with self._lock:
            if not self._opened:
                self.open()
                return self._tip
            self._sync(create=False)
            self._verify_meta(self._tip)
            return self._tip

    def reachable(self) -> bool:
        """True when the repository opens and, if there is a remote, the remote answers."""
        try:
            with self._lock:
                self._git.open()
                if self._git.remote is None:
                    return True
                return self._git.ping()
        except StorageError:
            return False

    def remote_moved(self, *, max_age: float = 0.0) -> bool:
        """Whether the branch moved since this process last fetched or pushed it, without fetching.

        One ``git ls-remote`` (the remote's ref advertisement, no objects); without a remote, one
        ``rev-parse`` of the local branch. The poller asks this every few idle cycles instead of
        fetching every cycle. An answer younger than ``max_age`` seconds is reused, so the pollers
        of one worker, which share this ``Storage``, ask once per interval between them. An
        unanswered question counts as moved: the fetch then says why.
        """
        with self._lock:
            self._git.open()
            now = self._clock.now()
            if self._probe is not None and now - self._probe[0] < max_age:
                return self._probe[1] != (self._remote_tip if self._git.remote is not None else self._tip)
            if self._git.remote is None:
                advertised = self._git.rev_parse(self.ref)
                self._probe = (now, advertised)
                return advertised != self._tip
            answered, advertised = self._git.advertised()
            if not answered:
                self._probe = None
                return True
            self._probe = (now, advertised)
            return advertised != self._remote_tip

    def local_view(self) -> StorageView:
        """The branch as this clone has it, read-only: no fetch, no push, nothing created.

        The local branch, else the remote-tracking one (a fresh clone has only that); a clone
        without either reads as empty. For offline readers (``symbiote route --offline``).
        """
        with self._lock:
            self._git.open()
            tip = self._git.rev_parse(self.ref)
            if tip is None and self._git.remote is not None:
                tip = self._git.rev_parse(self.remote_ref)
            if tip is not None:
                self._verify_meta(tip)
            return StorageView(self, self._snapshot(tip))

    def tip(self) -> str | None:
        """The local branch tip (no network)."""
        with self._lock:
            self._git.open()
            self._tip = self._git.rev_parse(self.ref)
            return self._tip

    # ------------------------------------------------------------------ reading

    def read_json(self, path: str) -> Any | None:
        """The parsed file at the local tip, or None; corrupt JSON raises StorageError naming file and ref."""
        validate_path(path)
        with self._lock:
            self._ensure_open()
            return self._load(self._snapshot(self._tip), path)

    def list_paths(self, prefix: str = "") -> list[str]:
        """Every file under the folder ``prefix`` (recursively), sorted."""
        _validate_prefix(prefix)
        with self._lock:
            self._ensure_open()
            return _list(self._snapshot(self._tip), prefix)

    def exists(self, path: str) -> bool:
        validate_path(path)
        with self._lock:
            self._ensure_open()
            return path in self._snapshot(self._tip).files

    def log(self, limit: int = 20) -> list[CommitInfo]:
        """The last ``limit`` commits of the local branch (never the whole history)."""
        with self._lock:
            self._git.open()
            if self._git.rev_parse(self.ref) is None:
                return []
            return self._git.log(limit)

    # ------------------------------------------------------------------ writing

    def update(self, mutate: Mutation, message: str) -> str | None:
        """Apply ``mutate``'s {path: value or None} in one commit and push it; None when nothing changed.

        ``mutate`` may run several times: after a rejected push it is called again on the
        fresh remote state so that it recomputes its change on top of the other writer's.
        Callers pass a transaction of ``storage.transactions`` (``tests/test_transactions.py``).
        """
        return self._update(mutate, message, allow_meta=False)

    def migrate(self) -> int:
        """Bring the branch to ``SCHEMA_VERSION`` with ``MIGRATIONS``; returns the version now on the branch."""
        with self._lock:
            self._ensure_open()
            version = self._meta_version(self._snapshot(self._tip))
            if version >= SCHEMA_VERSION:
                return version
            target = SCHEMA_VERSION

            def mutate(view: StorageView) -> dict[str, Any | None]:
                meta = view.read_json(META_PATH)
                if not isinstance(meta, dict):
                    raise StorageError(f"{META_PATH} on {self.ref} is not a JSON object")
                current = self._meta_version(view._snapshot)
                if current >= target:
                    return {}
                paths = [p for p in view.list_paths() if p != META_PATH]
                state: dict[str, Any] = {p: view.read_json(p) for p in paths}
                for ver in range(current, target):
                    step = MIGRATIONS.get(ver)
                    if step is None:
                        raise StorageError(f"{META_PATH} on {self.ref}: no migration from schema_version {ver}")
                    state = step(state)
                changes: dict[str, Any | None] = {p: None for p in paths if p not in state}
                changes.update(state)
                changes[META_PATH] = {**meta, "schema_version": target}
                return changes

            self._update(mutate, f"Migrate storage to schema version {target}", allow_meta=True)
            return self._meta_version(self._snapshot(self._tip))

    def _update(self, mutate: Mutation, message: str, *, allow_meta: bool) -> str | None:
        message = message.strip()
        if not message or "\x00" in message:
            raise StorageError("a storage commit needs a non-empty message")
        with self._lock:
            self._ensure_open()
            attempts = 0
            while True:
                base = self._tip
                snapshot = self._snapshot(base)
                plan = self._plan(snapshot, mutate(StorageView(self, snapshot)), allow_meta=allow_meta)
                if not plan:
                    return None
                shas = self._git.write_blobs(plan)
                new = self._git.commit(base, snapshot.files, shas, message)
                if not self._set_ref(new, base):
                    # Another process moved the local branch: recompute on top of it.
                    attempts += 1
                    self._tip = self._git.rev_parse(self.ref)
                    if attempts > self.push_retries:
                        raise StorageConflictError(f"{self.ref} kept moving under us; the change was not stored")
                    continue
                self._tip = new
                self._remember(_Snapshot(new, _apply(snapshot.files, shas)))
                if self._git.remote is None:
                    self.commits_made += 1
                    return new
                result = self._push(new)
                if result.ok:
                    self._remote_tip = self.last_pushed = new
                    self.commits_made += 1
                    return new
                if not result.retryable:
                    self._reset_to_remote(new, base)
                    raise StorageError(
                        f"push of {self.ref} to remote '{self._git.remote}' was refused: {result.reason}"
                    )
                self.push_rejections += 1
                attempts += 1
                if attempts <= self.push_retries:
                    self._backoff(attempts)
                remote_tip = self._fetch()
                self._reset_to_remote(new, base)
                if remote_tip is None:
                    raise StorageError(f"{self.ref} vanished from remote '{self._git.remote}' while pushing")
                self._verify_meta(remote_tip, where=f"remote '{self._git.remote}'")
                if attempts > self.push_retries:
                    raise StorageConflictError(
                        f"push of {self.ref} to remote '{self._git.remote}' was rejected {attempts} times "
                        "(other writers kept winning); the change was not stored"
                    )

    def _plan(
        self, snapshot: _Snapshot, changes: Mapping[str, Any | None], *, allow_meta: bool
    ) -> dict[str, bytes | None]:
        """Serialise and validate ``changes``, keeping only files whose bytes actually change."""
        if not isinstance(changes, Mapping):
            raise StorageError("update's mutate must return a mapping of path -> value (or None to delete)")
        hex_length = len(snapshot.tip) if snapshot.tip else 40
        plan: dict[str, bytes | None] = {}
        for path, value in changes.items():
            validate_path(path)
            if path == META_PATH and not allow_meta:
                raise StorageError(f"{META_PATH} is managed by Symbiote's storage itself")
            current = snapshot.files.get(path)
            if value is None:
                if current is not None:
                    plan[path] = None
                continue
            try:
                data = dumps(value)
            except (TypeError, ValueError) as exc:
                raise StorageError(f"cannot store {path}: {exc}") from None
            if current is None or blob_sha(data, hex_length) != current:
                plan[path] = data
        if plan:
            _check_shape(snapshot.files, plan)
        return plan

    # ------------------------------------------------------------------ snapshots and the parsed-file cache

    def _snapshot(self, tip: str | None) -> _Snapshot:
        """The files of ``tip``, listed once per commit (trees are small: files are per day)."""
        if tip is None:
            return _Snapshot(None, {})
        cached = self._snapshots.get(tip)
        if cached is not None:
            self._snapshots.move_to_end(tip)
            return cached
        snapshot = _Snapshot(tip, self._git.list_files(tip))
        self._remember(snapshot)
        return snapshot

    def _remember(self, snapshot: _Snapshot) -> None:
        if snapshot.tip is None:
            return
        self._snapshots[snapshot.tip] = snapshot
        self._snapshots.move_to_end(snapshot.tip)
        while len(self._snapshots) > _MAX_SNAPSHOTS:
            self._snapshots.popitem(last=False)

    def _load(self, snapshot: _Snapshot, path: str) -> Any | None:
        """Parse one file, through the blob-sha cache (callers get their own copy: they may mutate it)."""
        validate_path(path)
        sha = snapshot.files.get(path)
        if sha is None:
            return None
        with self._lock:
            cached = self._cache.get(sha)
            if cached is not None:
                self._cache.move_to_end(sha)
                # Our own pickle of JSON data we parsed: a fast deep copy, not untrusted input.
                return pickle.loads(cached)  # noqa: S301
            data = self._git.read_blob(sha)
            try:
                value = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
                raise StorageError(
                    f"{path} on {self.ref} is not valid JSON{where}: fix or delete it on the branch"
                ) from None
            pickled = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            self._cache[sha] = pickled
            self._cache_bytes += len(pickled)
            while len(self._cache) > 1 and (len(self._cache) > CACHE_SIZE or self._cache_bytes > CACHE_BYTES):
                _, evicted = self._cache.popitem(last=False)
                self._cache_bytes -= len(evicted)
            return value

    # ------------------------------------------------------------------ moving the branch

    def _set_ref(self, new: str | None, old: str | None) -> bool:
        """Compare-and-swap the local branch from ``old`` to ``new`` (None: absent), tracking the tip."""
        ok = self._git.swap(new, old)
        if ok:
            self._tip = new
        return ok

    def _reset_to_remote(self, ours: str, base: str | None) -> None:
        """Put the local branch back at the remote's state (or ``base`` if unknown) after a push of ``ours`` failed."""
        if not self._set_ref(self._remote_tip or base, ours):
            self._tip = self._git.rev_parse(self.ref)

    def _fetch(self) -> str | None:
        """Fetch the remote branch and check it kept our last push; None when the remote does not have it."""
        if not self._git.fetch():
            self._remote_tip = None
            return None
        self._remote_tip = self._git.rev_parse(self.remote_ref)
        self._check_history(self._remote_tip)
        return self._remote_tip

    def _check_history(self, remote_tip: str | None) -> None:
        """Refuse to build on a remote that lost our last push: it was rolled back or replaced.

        Taking it silently would start over from its older (or absent) cursor and never handle the
        events in between; pushing on top would silently undo the rollback. So the local branch moves
        to the remote's state (our tip kept under ``refs/symbiote/unpushed/``) and the caller decides.
        """
        lost = self.last_pushed
        if lost is None or remote_tip == lost:
            return
        if remote_tip is not None and (
            self._git.is_ancestor(lost, remote_tip) or self._compacted_after(lost, remote_tip)
        ):
            return
        self.last_pushed = None
        local = self._git.rev_parse(self.ref)
        if local is not None and remote_tip is not None:
            self._abandon(local, remote_tip)
        elif local is not None:
            backup = f"refs/symbiote/unpushed/{self.branch}"
            self._git.keep(backup, local, "symbiote: unpushed storage")
            self._set_ref(None, local)
        what = "was deleted" if remote_tip is None else "no longer contains it (rolled back or replaced)"
        raise HistoryRewrittenError(
            f"{self.ref} on remote '{self._git.remote}' {what}: {lost[:12]} was the last commit this run pushed",
            lost=lost,
            remote_tip=remote_tip,
        )

    def _compacted_after(self, lost: str, remote_tip: str) -> bool:
        """True when ``remote_tip``'s recent history holds a compaction of a tip containing ``lost``.

        A compaction whose replaced tip this clone does not have is trusted: it was made with a
        compare-and-swap against the tip every writer had pushed onto, fast-forward only.
        """
        for message in self._git.messages(remote_tip, _COMPACTION_LOOKBACK):
            for line in message.splitlines():
                if line.startswith(f"{COMPACTED_TRAILER}: "):
                    replaced = line.split(": ", 1)[1].strip()
                    if replaced == lost or self._git.rev_parse(replaced) is None:
                        return True
                    return self._git.is_ancestor(lost, replaced)
        return False

    def compact(self) -> str | None:
        """Replace the branch by one commit holding its current tree; the new commit, or None if already one.

        A compare-and-swap push (``--force-with-lease`` on the tip compacted) never drops another
        writer's commit: if the branch moved, it is fetched and compacted again. The old tip stays
        under ``refs/symbiote/compacted/<branch>`` until the push succeeded. Other writers see the
        ``Symbiote-Compacted-From`` trailer and rebuild on the new commit (``store gc --compact``).
        """
        backup = f"refs/symbiote/compacted/{self.branch}"
        with self._lock:
            self._ensure_open()
            for attempt in range(self.push_retries + 1):
                if attempt:
                    self._backoff(attempt)
                if self._git.remote is not None:
                    self._sync(create=False)
                old = self._tip
                if old is None:
                    return None
                if self._git.is_root(old):
                    return None  # a root commit already: nothing to compact
                tree = self._git.tree_of(old)
                new = self._git.commit_tree(tree, [], ["Compact storage history", f"{COMPACTED_TRAILER}: {old}"])
                self._git.keep(backup, old, "symbiote: history before compaction", check=True)
                if self._git.remote is not None:
                    result = self._push(new, lease=old)
                    if not result.ok:
                        if result.retryable:
                            self.push_rejections += 1
                            continue
                        raise StorageError(
                            f"compaction of {self.ref} was refused by '{self._git.remote}': {result.reason}"
                        )
                    self._remote_tip = self.last_pushed = new
                if not self._set_ref(new, old):
                    raise StorageConflictError(f"{self.ref} moved locally while compacting; the remote has {new}")
                self._remember(_Snapshot(new, self._snapshot(old).files))
                self._git.drop(backup)
                self.commits_made += 1
                return new
        raise StorageConflictError(f"{self.ref} kept moving while compacting; nothing was changed")

    def _push(self, sha: str, *, lease: str | None = None) -> PushResult:
        """``GitRepo.push``, kept here as the one push of this store (tests replace it to race a writer)."""
        return self._git.push(sha, lease=lease)

    def _backoff(self, attempt: int) -> None:
        """Short jittered exponential backoff so racing writers stop colliding."""
        delay = min(1.0, 0.05 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto
        self._clock.sleep(delay, self._never)

    # ------------------------------------------------------------------ open / reconcile

    def _ensure_open(self) -> None:
        if not self._opened:
            self.open()

    def _check_not_checked_out(self) -> None:
        """Moving a checked-out branch would change the user's HEAD: refuse instead."""
        if self._git.checked_out() == self.ref:
            raise StorageError(
                f"{self.ref} is checked out in {self.repo_path}; Symbiote never touches your working tree: "
                "switch to another branch"
            )

    def _sync(self, *, create: bool) -> None:
        """Make the local branch equal to the remote's, publishing local-only commits first when possible."""
        for attempt in range(self.push_retries + 1):
            if attempt:
                self._backoff(attempt)
            local = self._tip = self._git.rev_parse(self.ref)
            if self._git.remote is None:
                if local is None and create:
                    self._create_orphan()
                return
            remote_tip = self._fetch()
            if remote_tip is not None:
                self._verify_meta(remote_tip, where=f"remote '{self._git.remote}'")
            if local == remote_tip:
                if local is not None or not create:
                    return
                local = self._create_orphan()
                if local is None:
                    continue
            elif remote_tip is None:
                self._verify_meta(local)
            elif local is None or self._git.is_ancestor(local, remote_tip):
                if self._set_ref(remote_tip, local):
                    return
                continue
            elif not self._git.is_ancestor(remote_tip, local):
                self._verify_meta(local)
                local = self._rebuild(local, remote_tip)
                if local == remote_tip:
                    return
            if local is None:
                continue
            result = self._push(local)
            if result.ok:
                self._remote_tip = self.last_pushed = local
                return
            if not result.retryable:
                if remote_tip is not None:
                    self._abandon(local, remote_tip)
                raise StorageError(f"push of {self.ref} to remote '{self._git.remote}' was refused: {result.reason}")
            self.push_rejections += 1
        raise StorageConflictError(f"{self.ref} could not be reconciled with remote '{self._git.remote}'")

    def _create_orphan(self) -> str | None:
        """Create the branch as a root commit holding only meta.json; None if someone created it first."""
        data = dumps({"schema_version": SCHEMA_VERSION, "symbiote": True})
        shas = self._git.write_blobs({META_PATH: data})
        commit = self._git.commit(None, (), shas, "Create Symbiote storage")
        if not self._set_ref(commit, None):
            self._tip = self._git.rev_parse(self.ref)
            return None
        self.commits_made += 1
        return commit

    def _rebuild(self, local: str, remote_tip: str) -> str:
        """Replay local-only changes on top of the remote when they touch other files, else drop them.

        Dropping is safe: the cursor then stays behind and the hidden markers make
        re-processing report ``already_done``. The dropped tip stays reachable from
        ``refs/symbiote/unpushed/<branch>``.
        """
        merge_base = self._git.merge_base(local, remote_tip)
        base = self._snapshot(merge_base).files
        mine = self._snapshot(local).files
        theirs = self._snapshot(remote_tip).files
        changed = {p: mine.get(p) for p in set(base) | set(mine) if base.get(p) != mine.get(p)}
        changed = {p: sha for p, sha in changed.items() if theirs.get(p) != sha}
        try:
            for path in changed:
                validate_path(path)
        except StorageError:
            self._abandon(local, remote_tip)  # not written by us: never replay it
            return remote_tip
        if not changed:
            self._set_ref(remote_tip, local)
            return remote_tip
        remote_changed = {p for p in set(base) | set(theirs) if base.get(p) != theirs.get(p)}
        if changed.keys() & remote_changed or META_PATH in changed:
            self._abandon(local, remote_tip)
            return remote_tip
        snapshot = self._snapshot(remote_tip)
        commit = self._git.commit(remote_tip, snapshot.files, changed, "Replay unpushed storage changes")
        if not self._set_ref(commit, local):
            raise StorageConflictError(f"{self.ref} moved while replaying unpushed changes")
        self._remember(_Snapshot(commit, _apply(snapshot.files, changed)))
        return commit

    def _abandon(self, local: str, remote_tip: str) -> None:
        """Keep ``local`` under refs/symbiote/unpushed/ and move the branch to the remote's state."""
        backup = f"refs/symbiote/unpushed/{self.branch}"
        self._git.keep(backup, local, "symbiote: unpushed storage")
        log.warning("storage: unpushed commit %s of %s kept at %s; using the remote's state", local, self.ref, backup)
        if not self._set_ref(remote_tip, local):
            self._tip = self._git.rev_parse(self.ref)

    def _verify_meta(self, tip: str | None, where: str = "") -> None:
        """Refuse branches that are not ours and branches written by a newer Symbiote."""
        if tip is None:
            raise StorageError(f"{self.ref} does not exist")
        snapshot = self._snapshot(tip)
        suffix = f" on {where}" if where else ""
        if META_PATH not in snapshot.files:
            raise StorageError(
                f"{self.ref} is not a Symbiote storage branch (no {META_PATH}){suffix}; "
                "choose another branch with SYMBIOTE_STORAGE_BRANCH"
            )
        meta = self._load(snapshot, META_PATH)
        if not isinstance(meta, dict) or meta.get("symbiote") is not True:
            raise StorageError(
                f'{self.ref} is not a Symbiote storage branch ({META_PATH} lacks "symbiote": true){suffix}'
            )
        version = self._meta_version(snapshot)
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{META_PATH} on {self.ref}{suffix} has schema_version {version}, newer than this Symbiote "
                f"supports ({SCHEMA_VERSION}): upgrade symbiote"
            )

    def _meta_version(self, snapshot: _Snapshot) -> int:
        meta = self._load(snapshot, META_PATH)
        version = meta.get("schema_version") if isinstance(meta, dict) else None
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StorageError(f"{META_PATH} on {self.ref} has no valid schema_version")
        return version


def _apply(files: Mapping[str, str], shas: Mapping[str, str | None]) -> dict[str, str]:
    """The file listing after a commit, derived without asking git again."""
    result = dict(files)
    for path, sha in shas.items():
        if sha is None:
            result.pop(path, None)
        else:
            result[path] = sha
    return result


def _check_shape(files: Mapping[str, str], plan: Mapping[str, bytes | None]) -> None:
    """A path cannot be both a file and a folder; say so instead of letting git fail obscurely."""
    final = (set(files) - {p for p, d in plan.items() if d is None}) | {p for p, d in plan.items() if d is not None}
    for path in (p for p, d in plan.items() if d is not None):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in final:
                raise StorageError(f"cannot store {path}: {'/'.join(parts[:depth])} is a file")
        folder = path + "/"
        if any(other.startswith(folder) for other in final):
            raise StorageError(f"cannot store {path}: it is a folder")


def iter_json(storage: Storage | StorageView, prefix: str) -> Iterable[tuple[str, Any]]:
    """Every (path, parsed JSON) under ``prefix``; convenience for readers."""
    for path in storage.list_paths(prefix):
        yield path, storage.read_json(path)
