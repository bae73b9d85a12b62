"""Bounded history (issue 14): shallow fetches that still push safely, and compaction by ``store gc``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_storage import REF, git, make_clone, put, remote_tip

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import StorageError
from symbiote_cli.flows import store
from symbiote_cli.storage.branch import COMPACTED_TRAILER, Storage


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    path = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


def grow(path: Path, commits: int) -> None:
    """A storage branch with ``commits`` commits of history, each changing one file."""
    with Storage(path, clock=FakeClock()) as storage:
        for number in range(commits):
            storage.update(put({"users/a/n.json": {"n": number}}), f"write {number}")


def depth(path: Path) -> int:
    return int(git(path, "rev-list", "--count", REF))


def test_a_fresh_clone_fetches_one_commit_and_pushes_on_top_of_the_history(tmp_path: Path, origin: Path) -> None:
    grow(make_clone(tmp_path, origin, "writer"), 20)
    before = remote_tip(origin)
    fresh = make_clone(tmp_path, origin, "job")
    with Storage(fresh) as storage:
        assert depth(fresh) == 1  # not the 21 commits of history
        assert storage.read_json("users/a/n.json") == {"n": 19}
        storage.update(put({"users/b/x.json": {"ok": True}}), "from the shallow job")
    tip = remote_tip(origin)
    assert git(origin, "rev-parse", f"{tip}~1") == before  # a fast-forward on the full history
    assert depth(origin) == 22


def test_a_shallow_writer_with_a_stale_base_is_rejected_then_rebuilds(tmp_path: Path, origin: Path) -> None:
    grow(make_clone(tmp_path, origin, "writer"), 5)
    one, two = Storage(make_clone(tmp_path, origin, "one")).open(), Storage(make_clone(tmp_path, origin, "two")).open()
    one.update(put({"users/one/x.json": 1}), "one")
    two.update(put({"users/two/x.json": 2}), "two")  # its base is stale: compare-and-swap rejects, retried
    assert two.push_rejections == 1
    with Storage(make_clone(tmp_path, origin, "reader")) as reader:
        assert reader.read_json("users/one/x.json") == 1
        assert reader.read_json("users/two/x.json") == 2
    one.close()
    two.close()


def test_compaction_replaces_the_branch_by_one_commit_with_the_same_files(tmp_path: Path, origin: Path) -> None:
    writer = make_clone(tmp_path, origin, "writer")
    grow(writer, 10)
    old = remote_tip(origin)
    tree = git(origin, "rev-parse", f"{old}^{{tree}}")
    with Storage(writer, clock=FakeClock()) as storage:
        new = storage.compact()
        assert new is not None
        assert remote_tip(origin) == new
        assert git(origin, "rev-parse", f"{new}^{{tree}}") == tree
        assert depth(origin) == 1
        assert f"{COMPACTED_TRAILER}: {old}" in git(origin, "log", "-1", "--format=%B", new)
        assert git(writer, "rev-parse", "--verify", "-q", "refs/symbiote/compacted/__STORAGE__", check=False) == ""
        assert storage.compact() is None  # one commit already
        storage.update(put({"users/a/after.json": 1}), "after")
    assert depth(origin) == 2


def test_a_writer_that_pushed_before_a_compaction_carries_on_without_losing_data(
    tmp_path: Path, origin: Path
) -> None:
    grow(make_clone(tmp_path, origin, "writer"), 3)
    other = Storage(make_clone(tmp_path, origin, "other")).open()
    other.update(put({"users/other/x.json": 1}), "other writes")
    with Storage(make_clone(tmp_path, origin, "gc")) as gc:
        assert gc.compact() is not None
    other.update(put({"users/other/y.json": 2}), "after the compaction")  # no HistoryRewrittenError
    other.refresh()
    assert other.read_json("users/other/x.json") == 1
    assert other.read_json("users/a/n.json") == {"n": 2}
    assert depth(origin) == 2
    other.close()


def test_compaction_never_drops_a_commit_pushed_meanwhile(
    tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grow(make_clone(tmp_path, origin, "writer"), 3)
    racer = Storage(make_clone(tmp_path, origin, "racer")).open()
    storage = Storage(make_clone(tmp_path, origin, "gc")).open()
    real_push = storage._push
    raced: list[bool] = []

    def push(sha: str, *, lease: str | None = None) -> Any:
        if lease and not raced:
            raced.append(True)
            racer.update(put({"users/racer/x.json": 1}), "between the fetch and the push")
        return real_push(sha, lease=lease)

    monkeypatch.setattr(storage, "_push", push)
    assert storage.compact() is not None
    assert storage.push_rejections == 1  # the stale lease was refused, then compacted again
    with Storage(make_clone(tmp_path, origin, "reader")) as reader:
        assert reader.read_json("users/racer/x.json") == 1
    assert depth(origin) == 1
    racer.close()
    storage.close()


def test_the_old_tip_stays_under_a_local_ref_when_the_push_fails(
    tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grow(make_clone(tmp_path, origin, "writer"), 3)
    old = remote_tip(origin)
    clone = make_clone(tmp_path, origin, "gc")
    storage = Storage(clone).open()

    def refused(sha: str, *, lease: str | None = None) -> Any:
        del sha, lease
        return type("Refused", (), {"ok": False, "retryable": False, "reason": "denied"})()

    monkeypatch.setattr(storage, "_push", refused)
    with pytest.raises(StorageError, match="denied"):
        storage.compact()
    assert git(clone, "rev-parse", "refs/symbiote/compacted/__STORAGE__") == old
    assert remote_tip(origin) == old
    assert storage.tip() == old
    storage.close()


def test_store_gc_compacts_when_asked(tmp_path: Path, origin: Path) -> None:
    writer = make_clone(tmp_path, origin, "writer")
    grow(writer, 4)
    with Storage(writer) as storage:
        store.gc(storage, FakeClock(), retention_days=30, heartbeat_interval=900.0)
        assert depth(origin) == 5
        store.gc(storage, FakeClock(), retention_days=30, heartbeat_interval=900.0, compact=True)
        assert depth(origin) == 1
