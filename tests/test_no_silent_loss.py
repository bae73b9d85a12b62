"""No silent loss (issue 14): damaged files stop a run, an unusable position is warned about and recorded.

Real git throughout: the fork pushes to a bare ``origin``, and the damage is done there, as another
clone (a person, a bad restore, a force-push) would do it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import GIT_IDENTITY, git, git_env
from fakegithub import FakeGitHub
from test_poller import make_poller

from symbiote_cli.core.errors import StorageError
from symbiote_cli.flows.poll import PositionUnusableError
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring import PollRequest

REF = "refs/heads/__STORAGE__"


@pytest.fixture
def hello(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.add_repo("octo/hello")
    fake_github.issue_opened("octo", "octo/hello", 1, "first")
    return fake_github


def origin_of(fork: Path) -> Path:
    return Path(git(fork, "remote", "get-url", "origin").strip())


def origin_tip(fork: Path) -> str:
    return git(origin_of(fork), "rev-parse", REF).strip()


def push_files(fork: Path, tmp: Path, files: dict[str, Any]) -> str:
    """Commit ``files`` (path -> JSON) on top of origin's storage branch from another clone; return the commit."""
    editor = tmp / "editor"
    if editor.exists():
        git(editor, "fetch", "--quiet", "origin")
        git(editor, "reset", "--quiet", "--hard", "origin/__STORAGE__")
    else:
        git(tmp, "clone", "--quiet", "--branch", "__STORAGE__", str(origin_of(fork)), str(editor))
    for path, value in files.items():
        target = editor / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")
        git(editor, "add", path)
    git(editor, "commit", "--quiet", "-m", "edit by hand")
    git(editor, "push", "--quiet", "origin", "HEAD:__STORAGE__")
    return git(editor, "rev-parse", "HEAD").strip()


def baseline(hello: FakeGitHub, fork: Path) -> None:
    """One run that takes its baseline and ends: the branch has a cursor and a day of nothing."""
    poller, _, _ = make_poller(hello, fork)
    poller.cycle()
    poller.finish()


DAY = "users/octo/events/2026-01-01.json"
RECORD = {"event_id": "1", "type": "IssuesEvent", "repo": "octo/hello", "route": "ignore", "reason": "old"}


@pytest.mark.parametrize(
    ("path", "damaged", "named"),
    [
        (DAY, {"schema_version": 1, "events": [RECORD]}, '"events" is a list'),
        (DAY, [RECORD], "top level is a list"),
        ("registry.json", {"schema_version": 1, "repos": [1]}, '"repos" is a list'),
        ("users/octo/cursor.json", [1], "not a valid Cursor"),
    ],
)
def test_a_misshapen_file_stops_the_run_before_anything_is_acted_on_or_rewritten(
    hello: FakeGitHub, fork: Path, tmp_path: Path, path: str, damaged: Any, named: str
) -> None:
    baseline(hello, fork)
    damaged_tip = push_files(fork, tmp_path, {path: damaged})
    hello.issue_opened("octo", "octo/hello", 2, "new one")
    with pytest.raises(StorageError) as caught:
        make_poller(hello, fork)
    assert path in str(caught.value)
    assert named in str(caught.value)
    assert origin_tip(fork) == damaged_tip  # nothing rewritten
    assert not hello.comments  # nothing acted on


def test_load_day_refuses_a_day_file_whose_events_is_a_list(fork: Path, tmp_path: Path) -> None:
    storage = Storage(fork).open()
    storage.close()
    push_files(fork, tmp_path, {DAY: {"schema_version": 1, "events": [RECORD]}})
    with Storage(fork) as fresh, pytest.raises(StorageError, match="is damaged"):
        layout.load_day(fresh, DAY)


def ahead_cursor(fork: Path, tmp: Path) -> None:
    push_files(
        fork, tmp, {"users/octo/cursor.json": {"schema_version": 1, "user": "octo", "last_event_id": "99999999999"}}
    )


def test_a_cursor_ahead_of_the_feed_stops_the_run_and_is_recorded(
    hello: FakeGitHub, fork: Path, tmp_path: Path
) -> None:
    baseline(hello, fork)
    ahead_cursor(fork, tmp_path)
    poller, seen, _ = make_poller(hello, fork)
    with pytest.raises(PositionUnusableError, match="--rebaseline"):
        poller.cycle()
    assert any("ahead of the newest event" in w for w in seen.warnings)
    with Storage(fork) as storage:
        incidents = layout.load_incidents(storage, "octo")
        assert [i["kind"] for i in incidents] == ["cursor-ahead"]
        cursor = layout.load_cursor(storage, "octo")
        assert cursor is not None
        assert cursor.last_event_id == "99999999999"


def test_rebaseline_takes_a_new_baseline_when_the_cursor_is_ahead(
    hello: FakeGitHub, fork: Path, tmp_path: Path
) -> None:
    baseline(hello, fork)
    ahead_cursor(fork, tmp_path)
    poller, _seen, _ = make_poller(hello, fork, req=PollRequest(user="octo", rebaseline=True))
    report = poller.cycle()
    assert report.status == "baseline"
    poller.finish()
    with Storage(fork) as storage:
        cursor = layout.load_cursor(storage, "octo")
        assert cursor is not None
        assert cursor.last_event_id == hello.events("octo")[-1]["id"]
        assert [i["kind"] for i in layout.load_incidents(storage, "octo")] == ["cursor-ahead"]


def roll_back(fork: Path) -> str:
    origin = origin_of(fork)
    parent = git(origin, "rev-parse", f"{REF}~1").strip()
    git(origin, "update-ref", REF, parent)
    return parent


def replace_history(fork: Path) -> str:
    origin = origin_of(fork)
    blob = _write_blob(origin, json.dumps({"schema_version": 1, "symbiote": True}) + "\n")
    tree = _mktree(origin, f"100644 blob {blob}\tmeta.json\n")
    commit = git(origin, "commit-tree", tree, "-m", "unrelated history").strip()
    git(origin, "update-ref", REF, commit)
    return commit


def _write_blob(repo: Path, text: str) -> str:
    path = repo / "blob.tmp"
    path.write_text(text, encoding="utf-8")
    try:
        return git(repo, "hash-object", "-w", str(path)).strip()
    finally:
        path.unlink()


def _mktree(repo: Path, listing: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, "mktree"], cwd=repo, env=git_env(), input=listing, text=True, check=True,
        capture_output=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("damage", [roll_back, replace_history], ids=["rolled-back", "replaced"])
def test_a_branch_that_lost_our_last_push_stops_the_run_is_recorded_and_not_undone(
    hello: FakeGitHub, fork: Path, damage: Any
) -> None:
    poller, seen, _ = make_poller(hello, fork)
    poller.cycle()  # baseline, pushed
    ours = origin_tip(fork)
    damage(fork)
    with pytest.raises(PositionUnusableError, match="--rebaseline"):  # noqa: PT012 - seen within the probe interval
        for _ in range(poller.opts.inbox_probe_every):
            poller.cycle()
    assert any("last commit this run pushed" in w for w in seen.warnings)
    tip = origin_tip(fork)
    with Storage(fork) as storage:
        assert [i["kind"] for i in layout.load_incidents(storage, "octo")] == ["history-rewritten"]
    ancestor = git_ok(origin_of(fork), "merge-base", "--is-ancestor", ours, tip)
    assert not ancestor  # the rollback or replacement was not silently undone by a push on top


def git_ok(repo: Path, *args: str) -> bool:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, env=git_env(), check=False).returncode == 0


@pytest.mark.parametrize("damage", [roll_back, replace_history], ids=["rolled-back", "replaced"])
def test_rebaseline_carries_on_after_a_rollback_with_a_new_baseline(
    hello: FakeGitHub, fork: Path, damage: Any
) -> None:
    poller, _seen, _ = make_poller(hello, fork, req=PollRequest(user="octo", rebaseline=True))
    poller.cycle()
    damage(fork)
    for _ in range(poller.opts.inbox_probe_every):  # seen within the probe interval: warned, recorded, no stop
        poller.cycle()
    assert poller.stats.incidents == ["history-rewritten"]
    report = poller.cycle()
    assert report.status == "baseline"
    hello.issue_opened("octo", "octo/hello", 2, "after the rollback")
    opened = hello.events("octo")[-1]["id"]
    assert poller.cycle().handled == 1  # still the session's owner on the rolled-back branch
    poller.finish()
    with Storage(fork) as storage:
        cursor = layout.load_cursor(storage, "octo")
        assert cursor is not None
        assert cursor.last_event_id == opened
