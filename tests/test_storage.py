"""Storage against real git: a bare ``origin``, clones, a user's dirty checkout, racing writers."""

from __future__ import annotations

import hashlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import SchemaVersionError, StorageConflictError, StorageError
from symbiote_cli.storage import branch as storage_mod
from symbiote_cli.storage.branch import Storage, StorageView

BRANCH = "__STORAGE__"
REF = f"refs/heads/{BRANCH}"
# Only the test's own setup commits (the user's main branch, foreign branches) need an identity.
ID = ["-c", "user.name=Test User", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


@pytest.fixture(autouse=True)
def no_git_identity(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like a fresh CI runner: no global or system config, hence no identity."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    path = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(path))
    return path


def make_clone(tmp_path: Path, origin: Path, name: str) -> Path:
    path = tmp_path / name
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    git(path, "remote", "add", "origin", str(origin))
    return path


@pytest.fixture
def clone(tmp_path: Path, origin: Path) -> Path:
    return make_clone(tmp_path, origin, "clone")


@pytest.fixture
def opened(clone: Path) -> Iterator[Storage]:
    store = Storage(clone, clock=FakeClock())
    store.open()
    yield store
    store.close()


def put(values: dict[str, Any]) -> Callable[[StorageView], dict[str, Any]]:
    return lambda _view: values


def remote_tip(origin: Path) -> str | None:
    return git(origin, "rev-parse", "--verify", "-q", REF, check=False) or None


def show(repo: Path, rev: str, path: str) -> str:
    return git(repo, "show", f"{rev}:{path}")


def push_foreign_commit(tmp_path: Path, origin: Path, files: dict[str, str], *, on_storage: bool) -> None:
    """Commit files to __STORAGE__ the way a human would (checkout, commit, push)."""
    work = tmp_path / f"work-{len(list(tmp_path.iterdir()))}"
    git(tmp_path, "clone", "-q", str(origin), str(work))
    if on_storage:
        git(work, "checkout", "-q", "-b", BRANCH, f"origin/{BRANCH}")
    else:
        git(work, "checkout", "-q", "--orphan", BRANCH)
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text, encoding="utf-8")
        git(work, "add", name)
    git(work, *ID, "commit", "-q", "-m", "by hand")
    git(work, "push", "-q", "origin", BRANCH)


# ---------------------------------------------------------------------------- creation


def test_open_creates_orphan_branch_and_pushes_it(clone: Path, origin: Path) -> None:
    store = Storage(clone)
    store.open()
    tip = remote_tip(origin)
    assert tip is not None
    assert tip == store.tip()
    assert git(origin, "rev-list", "--parents", "-n1", tip) == tip  # a root commit: no parent
    assert show(origin, tip, "meta.json") == '{\n  "schema_version": 2,\n  "symbiote": true\n}'
    assert git(origin, "log", "-1", "--format=%an <%ae>|%cn <%ce>", tip) == (
        "Symbiote <symbiote@users.noreply.github.com>|Symbiote <symbiote@users.noreply.github.com>"
    )
    assert store.read_json("meta.json") == {"schema_version": 2, "symbiote": True}
    assert store.commits_made == 1
    # Opening again (or from another clone) adopts the branch and commits nothing.
    again = Storage(clone)
    again.open()
    assert again.commits_made == 0
    assert remote_tip(origin) == tip
    store.close()
    again.close()


def test_commits_work_without_any_git_identity(clone: Path) -> None:
    assert git(clone, "config", "user.name", check=False) == ""
    with pytest.raises(AssertionError):  # plain git cannot commit here...
        git(clone, "commit", "-q", "--allow-empty", "-m", "x")
    store = Storage(clone)
    store.open()  # ...Storage can: it sets author and committer itself
    sha = store.update(put({"a.json": {"x": 1}}), "Write a")
    assert sha is not None
    assert git(clone, "log", "-1", "--format=%an|%ce", sha) == "Symbiote|symbiote@users.noreply.github.com"
    store.close()


def test_commit_time_comes_from_the_clock(clone: Path) -> None:
    clock = FakeClock(start=1_700_000_000.0)
    store = Storage(clone, clock=clock)
    store.open()
    clock.advance(60)
    sha = store.update(put({"a.json": 1}), "Write a")
    assert sha is not None
    assert git(clone, "log", "-1", "--format=%at %ct", sha) == "1700000060 1700000060"
    store.close()


# ---------------------------------------------------------------------------- read / write


def test_read_write_delete_and_list(opened: Storage, tmp_path: Path, origin: Path) -> None:
    assert opened.read_json("users/alice/cursor.json") is None
    assert not opened.exists("users/alice/cursor.json")
    sha = opened.update(
        put(
            {
                "users/alice/cursor.json": {"last_event_id": "42", "schema_version": 1},
                "users/alice/events/2026-01-01.json": [{"event_id": "42", "title": "héllo"}],
                "users/bob/cursor.json": {"last_event_id": "7"},
            }
        ),
        "Record events",
    )
    assert sha is not None
    assert opened.read_json("users/alice/cursor.json") == {"last_event_id": "42", "schema_version": 1}
    assert opened.exists("users/alice/events/2026-01-01.json")
    assert opened.list_paths("users/alice") == ["users/alice/cursor.json", "users/alice/events/2026-01-01.json"]
    assert opened.list_paths("users/alice/") == opened.list_paths("users/alice")
    assert opened.list_paths("users/nobody") == []
    assert "meta.json" in opened.list_paths("")
    # The exact serialisation: sorted keys, indent 2, real UTF-8, trailing newline.
    raw = git(origin, "cat-file", "blob", f"{REF}:users/alice/events/2026-01-01.json")
    assert raw == '[\n  {\n    "event_id": "42",\n    "title": "héllo"\n  }\n]'

    opened.update(put({"users/bob/cursor.json": None}), "Forget bob")
    assert opened.read_json("users/bob/cursor.json") is None
    assert opened.list_paths("users") == ["users/alice/cursor.json", "users/alice/events/2026-01-01.json"]

    # Another clone sees exactly the same state after opening.
    other = Storage(make_clone(tmp_path, origin, "other"))
    other.open()
    assert other.read_json("users/alice/cursor.json") == {"last_event_id": "42", "schema_version": 1}
    assert other.read_json("users/bob/cursor.json") is None
    assert other.tip() == opened.tip() == remote_tip(origin)
    other.close()


def test_no_commit_when_nothing_changes(opened: Storage, origin: Path) -> None:
    opened.update(put({"a.json": {"b": 1, "a": [1, 2]}}), "Write a")
    tip = opened.tip()
    made = opened.commits_made
    # Same value (keys in another order), deleting a missing file, an empty change: no commit.
    assert opened.update(put({"a.json": {"a": [1, 2], "b": 1}}), "Write a") is None
    assert opened.update(put({"missing.json": None}), "Delete") is None
    assert opened.update(put({}), "Nothing") is None
    assert opened.tip() == tip == remote_tip(origin)
    assert opened.commits_made == made
    # Only the changed file is part of the next commit.
    opened.update(put({"a.json": {"a": [1, 2], "b": 1}, "c.json": 3}), "Write c")
    assert opened.log(1)[0].files_changed == 1


def test_reads_return_independent_copies(opened: Storage) -> None:
    opened.update(put({"list.json": [1, 2]}), "Write list")
    first = opened.read_json("list.json")
    assert isinstance(first, list)
    first.append(3)
    assert opened.read_json("list.json") == [1, 2]
    second = opened.read_json("list.json")
    assert isinstance(second, list)
    second.append(4)
    assert opened.read_json("list.json") == [1, 2]

    def mutate(view: StorageView) -> dict[str, Any]:
        items = view.read_json("list.json")
        assert isinstance(items, list)
        items.append(9)
        return {"list.json": items}

    opened.update(mutate, "Append")
    assert opened.read_json("list.json") == [1, 2, 9]


def test_view_sees_the_state_mutate_builds_on(opened: Storage) -> None:
    opened.update(put({"a.json": 1, "d/b.json": 2}), "Write")
    seen: dict[str, Any] = {}

    def mutate(view: StorageView) -> dict[str, Any]:
        seen["tip"] = view.tip
        seen["a"] = view.read_json("a.json")
        seen["paths"] = view.list_paths("d")
        seen["exists"] = view.exists("d/b.json")
        return {}

    opened.update(mutate, "Look")
    assert seen == {"tip": opened.tip(), "a": 1, "paths": ["d/b.json"], "exists": True}


def test_file_and_folder_clash_is_refused(opened: Storage) -> None:
    opened.update(put({"a/b.json": 1}), "Write")
    with pytest.raises(StorageError, match=r"a is a file|is a folder"):
        opened.update(put({"a": 1}), "Clash")
    with pytest.raises(StorageError, match=r"a/b\.json is a file"):
        opened.update(put({"a/b.json/c.json": 1}), "Clash")
    assert opened.read_json("a/b.json") == 1


def test_meta_json_is_not_writable_through_update(opened: Storage) -> None:
    with pytest.raises(StorageError, match=r"meta\.json"):
        opened.update(put({"meta.json": None}), "Break")
    with pytest.raises(StorageError, match=r"cannot store x\.json"):
        opened.update(put({"x.json": float("nan")}), "NaN")


def test_log_lists_recent_commits(opened: Storage) -> None:
    opened.update(put({"a.json": 1, "b.json": 2}), "Write two")
    opened.update(put({"a.json": 3}), "Write one")
    entries = opened.log()
    assert [e.message for e in entries] == ["Write one", "Write two", "Create Symbiote storage"]
    assert [e.files_changed for e in entries] == [1, 2, 1]
    assert entries[0].sha == opened.tip()
    assert entries[0].time > 0
    assert len(opened.log(limit=1)) == 1


# ---------------------------------------------------------------------------- the user's checkout


def test_user_fork_working_tree_head_and_index_are_untouched(tmp_path: Path, origin: Path) -> None:
    fork = make_clone(tmp_path, origin, "fork")
    (fork / "README.md").write_text("hello\n", encoding="utf-8")
    (fork / "src").mkdir()
    (fork / "src" / "app.py").write_text("print(1)\n", encoding="utf-8")
    git(fork, "add", ".")
    git(fork, *ID, "commit", "-q", "-m", "initial")
    git(fork, "push", "-q", "origin", "main")
    # Dirty: a modified tracked file, a staged new file, an untracked file.
    (fork / "README.md").write_text("hello, edited\n", encoding="utf-8")
    (fork / "staged.txt").write_text("staged\n", encoding="utf-8")
    git(fork, "add", "staged.txt")
    (fork / "untracked.txt").write_text("mine\n", encoding="utf-8")

    def state() -> dict[str, str]:
        files = {
            str(p.relative_to(fork)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(fork.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(fork).parts
        }
        return {
            "status": git(fork, "status", "--porcelain=v2", "--branch"),
            "head": git(fork, "symbolic-ref", "HEAD") + " " + git(fork, "rev-parse", "HEAD"),
            "index": git(fork, "ls-files", "--stage"),
            "index_bytes": hashlib.sha256((fork / ".git" / "index").read_bytes()).hexdigest(),
            "files": repr(files),
            "main": git(fork, "rev-parse", "refs/heads/main"),
        }

    before = state()
    store = Storage(fork)
    store.open()
    for i in range(3):
        store.update(put({f"users/u/events/2026-01-0{i + 1}.json": [i], "counter.json": i}), f"Cycle {i}")
    store.update(put({"counter.json": None}), "Delete counter")
    assert store.read_json("users/u/events/2026-01-02.json") == [1]
    store.close()
    assert state() == before
    assert remote_tip(origin) is not None


def test_refuses_a_checked_out_storage_branch(clone: Path) -> None:
    git(clone, "checkout", "-q", "--orphan", BRANCH)
    with pytest.raises(StorageError, match="is checked out"):
        Storage(clone).open()


def test_works_in_a_bare_repository(tmp_path: Path, origin: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(bare, "remote", "add", "origin", str(origin))
    store = Storage(bare)
    store.open()
    sha = store.update(put({"x.json": {"n": 1}}), "Write x")
    assert sha == remote_tip(origin)
    assert store.read_json("x.json") == {"n": 1}
    store.close()
    # The bare origin itself, with no remote: local-only mode.
    local = Storage(origin)
    local.open()
    assert local.remote is None
    assert local.read_json("x.json") == {"n": 1}
    local.close()


def test_local_only_mode(tmp_path: Path) -> None:
    repo = tmp_path / "solo"
    git(tmp_path, "init", "-q", str(repo))
    store = Storage(repo)
    assert store.remote is None
    assert store.reachable()
    store.open()
    sha = store.update(put({"a.json": [1]}), "Write a")
    assert sha == git(repo, "rev-parse", REF)
    assert store.read_json("a.json") == [1]
    assert store.refresh() == sha
    assert git(repo, "for-each-ref", "refs/remotes") == ""
    store.close()


def test_unknown_remote_and_missing_repo_are_clear_errors(tmp_path: Path, clone: Path) -> None:
    with pytest.raises(StorageError, match="no git remote named 'upstream'"):
        Storage(clone, remote="upstream").open()
    with pytest.raises(StorageError, match="not a git repository"):
        Storage(tmp_path / "nowhere").open()
    with pytest.raises(StorageError, match="not a valid git remote name"):
        Storage(clone, remote="--upload-pack=evil")
    with pytest.raises(StorageError, match="not a valid storage branch"):
        Storage(clone, branch="../x")


# ---------------------------------------------------------------------------- concurrency


def test_two_clones_racing_lose_no_update(tmp_path: Path, origin: Path) -> None:
    per_writer = 22
    stores = [Storage(make_clone(tmp_path, origin, f"racer{i}"), push_retries=60) for i in range(2)]
    stores[0].open()
    stores[1].open()
    calls = [0, 0]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        store = stores[index]
        barrier.wait()
        try:
            for i in range(per_writer):

                def mutate(view: StorageView, i: int = i) -> dict[str, Any]:
                    calls[index] += 1
                    counter = view.read_json("shared/counter.json") or {"n": 0}
                    return {
                        "shared/counter.json": {"n": counter["n"] + 1},
                        f"writers/w{index}.json": {"done": i + 1},
                    }

                assert store.update(mutate, f"Writer {index} step {i}") is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    final = Storage(make_clone(tmp_path, origin, "reader"))
    final.open()
    assert final.read_json("shared/counter.json") == {"n": 2 * per_writer}
    assert final.read_json("writers/w0.json") == {"done": per_writer}
    assert final.read_json("writers/w1.json") == {"done": per_writer}
    rejections = stores[0].push_rejections + stores[1].push_rejections
    assert rejections > 0
    assert sum(calls) == 2 * per_writer + rejections  # every rejection re-ran mutate on fresh state
    assert stores[0].commits_made + stores[1].commits_made == 2 * per_writer + 1  # + the creation commit
    # History is linear: one commit per update on top of the creation commit.
    assert git(origin, "rev-list", "--count", REF) == str(2 * per_writer + 1)
    for store in (*stores, final):
        store.close()


def test_rejected_push_recomputes_on_the_other_writers_state(tmp_path: Path, origin: Path) -> None:
    a = Storage(make_clone(tmp_path, origin, "a"), clock=FakeClock())
    b = Storage(make_clone(tmp_path, origin, "b"), clock=FakeClock())
    a.open()
    b.open()
    a.update(put({"log.json": ["a"]}), "A writes")
    seen: list[Any] = []

    def append_b(view: StorageView) -> dict[str, Any]:
        current = view.read_json("log.json") or []
        seen.append(list(current))
        return {"log.json": [*current, "b"]}

    b.update(append_b, "B appends")
    assert seen == [[], ["a"]]  # first on its stale tip, then again on A's state
    assert b.push_rejections == 1
    assert b.read_json("log.json") == ["a", "b"]
    assert b.tip() == remote_tip(origin)
    assert a.refresh() == remote_tip(origin)
    assert a.read_json("log.json") == ["a", "b"]
    a.close()
    b.close()


def test_conflict_error_after_bounded_retries(tmp_path: Path, origin: Path) -> None:
    a = Storage(make_clone(tmp_path, origin, "a"), clock=FakeClock())
    b = Storage(make_clone(tmp_path, origin, "b"), push_retries=2, clock=FakeClock())
    a.open()
    b.open()
    calls = 0

    def always_behind(view: StorageView) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        # Another writer lands a commit every time before we push.
        a.update(put({"a.json": calls}), f"A {calls}")
        return {"b.json": calls}

    with pytest.raises(StorageConflictError, match="rejected 3 times"):
        b.update(always_behind, "B writes")
    assert calls == 3
    assert b.tip() == remote_tip(origin)  # local is back at the remote's state
    assert b.read_json("b.json") is None
    assert b.read_json("a.json") == 3
    a.close()
    b.close()


def test_threads_sharing_one_storage(opened: Storage) -> None:
    def bump(view: StorageView) -> dict[str, Any]:
        return {"n.json": (view.read_json("n.json") or 0) + 1}

    threads = [threading.Thread(target=lambda: [opened.update(bump, "Bump") for _ in range(5)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opened.read_json("n.json") == 20


def test_unpushed_commits_are_pushed_or_replayed_on_open(
    tmp_path: Path, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path_a = make_clone(tmp_path, origin, "a")
    a = Storage(path_a, clock=FakeClock())
    b = Storage(make_clone(tmp_path, origin, "b"), clock=FakeClock())
    a.open()
    b.open()

    def crash(self: Storage, sha: str) -> Any:
        raise RuntimeError("killed before pushing")

    # 1. Local is ahead (crash between commit and push): the next open pushes it.
    with monkeypatch.context() as m:
        m.setattr(Storage, "_push", crash)
        with pytest.raises(RuntimeError):
            a.update(put({"mine.json": 1}), "A")
    ahead = git(path_a, "rev-parse", REF)
    assert remote_tip(origin) != ahead
    Storage(path_a).open().close()
    assert remote_tip(origin) == ahead

    # 2. Diverged, different files: the local change is replayed on top of the remote's.
    b.refresh()
    with monkeypatch.context() as m:
        m.setattr(Storage, "_push", crash)
        with pytest.raises(RuntimeError):
            a.update(put({"mine.json": 2}), "A")
    b.update(put({"theirs.json": 1}), "B")
    again = Storage(path_a)
    again.open()
    assert again.read_json("mine.json") == 2
    assert again.read_json("theirs.json") == 1
    assert again.tip() == remote_tip(origin)
    again.close()

    # 3. Diverged on the same file: the remote wins, the local tip is kept aside.
    b.refresh()
    with monkeypatch.context() as m:
        m.setattr(Storage, "_push", crash)
        with pytest.raises(RuntimeError):
            a.update(put({"shared.json": "a"}), "A")
    dropped = git(path_a, "rev-parse", REF)
    b.update(put({"shared.json": "b"}), "B")
    last = Storage(path_a)
    last.open()
    assert last.read_json("shared.json") == "b"
    assert last.tip() == remote_tip(origin)
    assert git(path_a, "rev-parse", f"refs/symbiote/unpushed/{BRANCH}") == dropped
    for store in (a, b, last):
        store.close()


# ---------------------------------------------------------------------------- not ours / schema / corrupt


def test_a_branch_that_is_not_ours_is_refused(tmp_path: Path, origin: Path, clone: Path) -> None:
    push_foreign_commit(tmp_path, origin, {"README.md": "someone else's branch\n"}, on_storage=False)
    before = remote_tip(origin)
    with pytest.raises(
        StorageError, match=r"refs/heads/__STORAGE__ is not a Symbiote storage branch \(no meta\.json\)"
    ):
        Storage(clone).open()
    assert remote_tip(origin) == before
    assert git(clone, "rev-parse", "--verify", "-q", REF, check=False) == ""


def test_a_local_branch_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "solo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "x").write_text("x", encoding="utf-8")
    git(repo, "add", "x")
    git(repo, *ID, "commit", "-q", "-m", "x")
    git(repo, "branch", BRANCH)
    with pytest.raises(StorageError, match=r"refs/heads/__STORAGE__ is not a Symbiote storage branch"):
        Storage(repo).open()


def test_meta_without_symbiote_flag_is_refused(tmp_path: Path, origin: Path, clone: Path) -> None:
    push_foreign_commit(tmp_path, origin, {"meta.json": '{"schema_version": 1}'}, on_storage=False)
    with pytest.raises(StorageError, match="not a Symbiote storage branch"):
        Storage(clone).open()


def test_newer_schema_version_is_refused(
    tmp_path: Path, origin: Path, clone: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as m:
        m.setattr(storage_mod, "SCHEMA_VERSION", 3)
        Storage(clone).open().close()
    other = make_clone(tmp_path, origin, "old-symbiote")
    with pytest.raises(SchemaVersionError, match=r"meta\.json on refs/heads/__STORAGE__.*schema_version 3"):
        Storage(other).open()


def test_migration_hook_runs_for_older_branches(
    tmp_path: Path, origin: Path, opened: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened.update(put({"users/a/cursor.json": {"last": "1"}, "old.json": 1}), "v1 data")

    def v1_to_v2(state: dict[str, Any]) -> dict[str, Any]:
        new = {path: value for path, value in state.items() if path != "old.json"}
        new["users/a/cursor.json"] = {"last_event_id": state["users/a/cursor.json"]["last"]}
        return new

    monkeypatch.setattr(storage_mod, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(storage_mod, "MIGRATIONS", {2: v1_to_v2})
    upgraded = Storage(make_clone(tmp_path, origin, "new-symbiote"))
    upgraded.open()
    assert upgraded.read_json("meta.json") == {"schema_version": 3, "symbiote": True}
    assert upgraded.read_json("users/a/cursor.json") == {"last_event_id": "1"}
    assert upgraded.read_json("old.json") is None
    assert upgraded.log(1)[0].message == "Migrate storage to schema version 3"
    assert upgraded.tip() == remote_tip(origin)
    assert upgraded.migrate() == 3  # idempotent
    upgraded.close()
    # The older Symbiote now refuses the branch instead of misreading it.
    monkeypatch.setattr(storage_mod, "SCHEMA_VERSION", 2)
    with pytest.raises(SchemaVersionError):
        opened.refresh()


def test_missing_migration_is_a_clear_error(opened: Storage, monkeypatch: pytest.MonkeyPatch, clone: Path) -> None:
    monkeypatch.setattr(storage_mod, "SCHEMA_VERSION", 3)
    monkeypatch.setattr(storage_mod, "MIGRATIONS", {1: lambda state: state})
    with pytest.raises(StorageError, match="no migration from schema_version 2"):
        Storage(clone).open()


def test_corrupt_json_names_the_file_and_other_files_still_work(tmp_path: Path, origin: Path, opened: Storage) -> None:
    opened.update(put({"good.json": {"ok": True}}), "Write good")
    push_foreign_commit(tmp_path, origin, {"users/x/bad.json": "{not json"}, on_storage=True)
    opened.refresh()
    for _ in range(2):  # no crash loop, no poisoned cache: the same clear error every time
        with pytest.raises(StorageError, match=r"users/x/bad\.json on refs/heads/__STORAGE__ is not valid JSON"):
            opened.read_json("users/x/bad.json")
    assert opened.read_json("good.json") == {"ok": True}
    assert "users/x/bad.json" in opened.list_paths("users")
    assert opened.update(put({"good.json": {"ok": 2}}), "Write good") is not None
    assert opened.read_json("good.json") == {"ok": 2}
    # Overwriting the corrupt file repairs it.
    opened.update(put({"users/x/bad.json": []}), "Repair")
    assert opened.read_json("users/x/bad.json") == []


# ---------------------------------------------------------------------------- refused pushes


def install_rejecting_hook(origin: Path, tmp_path: Path) -> Path:
    calls = tmp_path / "hook-calls"
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\necho call >> '{calls}'\necho 'error: GH006: Protected branch update failed' >&2\nexit 1\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return calls


def test_protected_branch_is_a_clear_bounded_error(tmp_path: Path, origin: Path, opened: Storage) -> None:
    opened.update(put({"a.json": 1}), "Write a")
    before = remote_tip(origin)
    calls = install_rejecting_hook(origin, tmp_path)
    with pytest.raises(StorageError, match=r"refs/heads/__STORAGE__ to remote 'origin' was refused") as info:
        opened.update(put({"a.json": 2}), "Write a again")
    assert not isinstance(info.value, StorageConflictError)
    assert "pre-receive hook declined" in str(info.value)
    assert "Protected branch" in str(info.value)
    assert calls.read_text(encoding="utf-8").count("call") == 1  # no retry loop
    # Local state is the remote's: nothing half-written, still readable.
    assert opened.tip() == before == remote_tip(origin)
    assert opened.read_json("a.json") == 1
    # Once the branch is writable again, everything works.
    (origin / "hooks" / "pre-receive").unlink()
    assert opened.update(put({"a.json": 2}), "Write a again") == remote_tip(origin)


def test_protected_branch_at_creation(tmp_path: Path, origin: Path, clone: Path) -> None:
    install_rejecting_hook(origin, tmp_path)
    with pytest.raises(StorageError, match=r"refs/heads/__STORAGE__ to remote 'origin' was refused"):
        Storage(clone).open()
    assert remote_tip(origin) is None


def test_unreachable_remote(tmp_path: Path) -> None:
    repo = make_clone(tmp_path, tmp_path / "gone.git", "clone")
    store = Storage(repo)
    assert not store.reachable()
    with pytest.raises(StorageError, match="cannot fetch refs/heads/__STORAGE__ from remote 'origin'"):
        store.open()


# ---------------------------------------------------------------------------- paths

BAD_PATHS = [
    "",
    "/etc/passwd",
    "../outside.json",
    "users/../../x.json",
    "users/./x.json",
    "users//x.json",
    "users/x/",
    "users\\x.json",
    "users/x y.json",
    "users/x\n.json",
    "users/x\x00.json",
    "users/\x1b[31m.json",
    ".git/config",
    "users/é.json",
    "users/x?.json",
    "a" * 300,
]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_bad_paths_are_rejected(opened: Storage, path: str) -> None:
    tip = opened.tip()
    with pytest.raises(StorageError, match="invalid storage path"):
        opened.update(put({path: 1}), "Write")
    with pytest.raises(StorageError, match="invalid storage path"):
        opened.read_json(path)
    with pytest.raises(StorageError, match="invalid storage path"):
        opened.exists(path)
    assert opened.tip() == tip


def test_good_paths_are_accepted(opened: Storage) -> None:
    paths = ["users/octo-cat/events/2026-01-01.json", "outbox/abc_DEF.1@x:y.json", "registry.json"]
    opened.update(put(dict.fromkeys(paths, 1)), "Write")
    assert all(opened.read_json(p) == 1 for p in paths)
    with pytest.raises(StorageError, match="invalid storage path"):
        opened.list_paths("../x")
