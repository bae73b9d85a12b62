"""Crashes, concurrent writers and a damaged storage branch — the real CLI as a subprocess.

* ``kill -9`` of ``symbiote poll`` at seeded random points of busy cycles (while starting,
  while acknowledging, right after the last acknowledgment — around the commit and push —
  and while idle), then a restart: zero duplicate and zero missing acknowledgments, and the
  storage branch consistent after every kill (``verify``). The default run does two seeds of
  five kills; ``SYMBIOTE_FULL=1 pytest -m slow`` adds twelve more seeds (70 kills in all).
* Several processes writing the storage branch through one bare origin at once (three
  users; one user from two checkouts; four ``act --state-id`` at once): no lost update.
* Storage damage (corrupt JSON, a newer ``schema_version``, a branch that is not ours, a
  protected branch refusing pushes): exit 1 with one ``error:`` line naming the file or
  ref, no traceback, no crash loop, nothing on the branch overwritten.
"""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import git, make_env
from test_reliability_support import (
    SLOW,
    USER,
    FaultyGitHub,
    ack_counts,
    branch_files,
    branch_tip,
    figures,
    is_ackable,
    new_fake,
    verify,
)

CLI = [sys.executable, "-m", "symbiote_cli"]
QUICK = {"SYMBIOTE_SECONDS_BETWEEN_WRITES": "0", "SYMBIOTE_SECONDS_BETWEEN_REQUESTS": "0"}
KILLS_PER_SEED = 5
DEFAULT_SEEDS = [11, 23]
FULL_SEEDS = [101, 202, 303, 404, 505, 606, 707, 808, 909, 1010, 1111, 1212]


@pytest.fixture
def fake() -> Iterator[FaultyGitHub]:
    server = new_fake()
    server.poll_interval = 1
    try:
        yield server
    finally:
        server.stop()


def run(fork: Path, env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=fork, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def clone(origin: Path, where: Path) -> Path:
    """Another checkout of the fork (``origin`` is its remote)."""
    git(where.parent, "clone", "--quiet", str(origin), where.name)
    return where


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.002)
    return condition()


# -------------------------------------------------------------------------- kill -9


class Activity:
    """Seeded random activity by the user: issues, PRs, comments, pushes, stars."""

    def __init__(self, fake: FaultyGitHub, rng: random.Random) -> None:
        self.fake = fake
        self.rng = rng
        self.issues = 0

    def burst(self, count: int) -> None:
        for _ in range(count):
            roll = self.rng.random()
            if roll < 0.45 or self.issues == 0:
                self.issues += 1
                self.fake.issue_opened(USER, "octo/hello", self.issues, f"issue {self.issues}")
            elif roll < 0.6:
                self.issues += 1
                self.fake.pr_opened(USER, "octo/hello", self.issues, f"change {self.issues}")
            elif roll < 0.85:
                self.fake.issue_comment(USER, "octo/hello", self.rng.randint(1, self.issues), "and another thing")
            elif roll < 0.95:
                self.fake.push(USER, "octo/hello")
            else:
                self.fake.watch(USER, "octo/hello")


def wanted(fake: FaultyGitHub) -> int:
    return sum(1 for e in fake.events(USER) if is_ackable(e))


def kill_trials(seed: int, fake: FaultyGitHub, fork: Path, origin: Path, env: dict[str, str]) -> Counter[str]:
    """KILLS_PER_SEED kills of a busy ``symbiote poll``, each checked; returns where they landed."""
    rng = random.Random(seed)
    activity = Activity(fake, rng)
    baseline = run(fork, env, "poll", "--once")
    assert baseline.returncode == 0, baseline.stderr
    landed: Counter[str] = Counter()
    for _trial in range(KILLS_PER_SEED):
        # Keep a seed's acknowledgments under GitHub's 80 a minute: each restart starts with a
        # fresh write budget (see test_restarts_share_the_content_creation_limit).
        activity.burst(rng.randint(3, 10))
        target = wanted(fake)
        acks_before = sum(ack_counts(fake).values())
        requests_before = len(fake.requests)
        proc = subprocess.Popen(
            [*CLI, "poll", "--interval", "0.1"],
            cwd=fork,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            how = rng.choice(["start-up", "any time", "mid-acting", "after-last-ack"])
            if how == "start-up":
                time.sleep(rng.uniform(0.0, 0.7))
            elif how == "any time":
                time.sleep(rng.uniform(0.0, 2.5))
            elif how == "mid-acting":
                goal = acks_before + rng.randint(1, max(1, target - acks_before))
                wait_for(lambda goal=goal: sum(ack_counts(fake).values()) >= goal, 20)
            else:
                wait_for(lambda goal=target: sum(ack_counts(fake).values()) >= goal, 20)
                time.sleep(rng.uniform(0.0, 0.2))
            if rng.random() < 0.3:
                activity.burst(rng.randint(1, 3))  # more events arrive while it runs
                target = wanted(fake)
            acks_at_kill = sum(ack_counts(fake).values())
            started = len(fake.requests) > requests_before
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        verdict = verify(fake, origin, settled=False)
        verdict.assert_ok()  # after every kill: consistent, no duplicate
        if not started:
            landed["starting"] += 1
        elif acks_at_kill < target:
            landed["acknowledging"] += 1
        elif verdict.pending:
            landed["acted, not yet stored"] += 1
        else:
            landed["stored (idle, or the next cycle)"] += 1
    for _ in range(2):  # restart: the crashed cycles are replayed, markers make them already_done
        done = run(fork, env, "poll", "--once")
        assert done.returncode == 0, done.stderr
    verdict = verify(fake, origin)
    verdict.assert_ok()
    assert verdict.expected > 0
    assert verdict.acked == verdict.expected
    figures(
        "crash",
        seed=seed,
        trials=KILLS_PER_SEED,
        events=verdict.events,
        acks=verdict.acked,
        duplicates=len(verdict.duplicates),
        losses=len(verdict.missing),
        landed=dict(landed),
    )
    return landed


@pytest.mark.parametrize("seed", [*DEFAULT_SEEDS, *(pytest.param(s, marks=SLOW) for s in FULL_SEEDS)])
def test_kill_9_at_random_points_then_restart_loses_and_duplicates_nothing(
    seed: int, fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", **QUICK)
    landed = kill_trials(seed, fake, fork, bare_origin, env)
    assert sum(landed.values()) == KILLS_PER_SEED


# -------------------------------------------------------------------------- concurrent writers


def test_three_users_writing_through_one_origin_at_once_lose_nothing(
    fake: FaultyGitHub, bare_origin: Path, fork: Path, tmp_path: Path
) -> None:
    users = {USER: fork}
    envs = {USER: make_env(fake, tmp_path / "home-octo", **QUICK)}
    for login in ("alice", "bob"):
        token = f"ghp_canary_{login}_0123456789"
        fake.add_user(login, token)
        fake.add_repo(f"{login}/work")
        users[login] = clone(bare_origin, tmp_path / f"fork-{login}")
        envs[login] = make_env(fake, tmp_path / f"home-{login}", token=token, **QUICK)

    def all_at_once() -> None:
        procs = {
            login: subprocess.Popen(
                [*CLI, "poll", "--once"],
                cwd=users[login],
                env=envs[login],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for login in users
        }
        for login, proc in procs.items():
            _out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"{login}: {err}"

    all_at_once()  # three baselines, racing to create the branch itself
    for round_ in range(2):
        for login in users:
            repo = "octo/hello" if login == USER else f"{login}/work"
            for number in range(1, 5):
                fake.issue_opened(login, repo, round_ * 10 + number, f"{login} {round_} {number}")
        all_at_once()
    all_at_once()
    files = branch_files(bare_origin)
    for login in users:
        assert f"users/{login}/cursor.json" in files
        assert files[f"users/{login}/session.json"]["status"] == "ended"
        verdict = verify(fake, bare_origin, user=login)
        verdict.assert_ok()
        assert verdict.acked == verdict.expected == 8
    figures("concurrency", case="three-users", trials=4, writers=3, duplicates=0, losses=0)


def test_four_act_state_ids_at_once_keep_every_outbox_record(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", SYMBIOTE_USER=USER, **QUICK)
    assert run(fork, env, "poll", "--once").returncode == 0
    fake.add_issue("octo/hello", 1, "target")
    checkouts = [fork, *(clone(bare_origin, tmp_path / f"co-{n}") for n in range(1, 4))]
    procs = []
    for n, checkout in enumerate(checkouts):
        request = {
            "kind": "comment",
            "repo": "octo/hello",
            "issue_number": 1,
            "body": f"result {n}",
            "idempotency_key": f"state-{n}",
        }
        proc = subprocess.Popen(
            [*CLI, "act", "-", "--state-id", f"s-{n}"],
            cwd=checkout,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(request))
        proc.stdin.close()
        procs.append(proc)
    for proc in procs:
        proc.wait(timeout=90)
        assert proc.stderr is not None
        assert proc.returncode == 0, proc.stderr.read()
    files = branch_files(bare_origin)
    assert {f"outbox/s-{n}.json" for n in range(4)} <= set(files)
    assert len(fake.comments_on("octo/hello", 1)) == 4
    figures("concurrency", case="four-act-state-ids", trials=1, writers=4, duplicates=0, losses=0)


def test_one_user_from_two_checkouts_at_once_one_session_wins_nothing_lost(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", **QUICK)
    assert run(fork, env, "poll", "--once").returncode == 0
    other = clone(bare_origin, tmp_path / "other")
    for number in range(1, 11):
        fake.issue_opened(USER, "octo/hello", number, f"bug {number}")
    procs = [
        subprocess.Popen(
            [*CLI, "poll", "--interval", "0.1", "--duration", "3s"],
            cwd=checkout,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for checkout in (fork, other)
    ]
    time.sleep(1.0)
    for number in range(11, 16):
        fake.issue_opened(USER, "octo/hello", number, f"bug {number}")
    outs = [proc.communicate(timeout=60) for proc in procs]
    # Exactly one gave way to the newer session, and says so with a non-zero exit (issue 13: a run
    # that cannot continue fails visibly, never a silent 0).
    results = sorted((proc.returncode, "superseded" in out + err) for proc, (out, err) in zip(procs, outs, strict=True))
    assert results == [(0, False), (1, True)], outs
    assert run(fork, env, "poll", "--once").returncode == 0
    verdict = verify(fake, bare_origin)
    verdict.assert_ok()
    assert verdict.acked == verdict.expected == 15
    figures("concurrency", case="same-user-two-checkouts", trials=1, writers=2, duplicates=0, losses=0)


# -------------------------------------------------------------------------- storage damage


def write_storage(origin: Path, files: dict[str, str], *, parent: bool = True, tmp: Path | None = None) -> str:
    """Commit ``files`` (raw text) onto __STORAGE__ of ``origin`` as another tool would."""
    with tempfile.TemporaryDirectory(dir=tmp) as scratch:
        work = Path(scratch) / "w"
        git(Path(scratch), "clone", "--quiet", str(origin), "w")
        exists = bool(git(work, "ls-remote", "--heads", "origin", "__STORAGE__").strip())
        if exists and parent:
            git(work, "checkout", "--quiet", "-B", "__STORAGE__", "origin/__STORAGE__")
        else:
            git(work, "checkout", "--quiet", "--orphan", "__STORAGE__")
            git(work, "rm", "-rf", "--quiet", "--ignore-unmatch", ".")
        for path, text in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            git(work, "add", path)
        git(work, "commit", "--quiet", "-m", "damage")
        git(work, "push", "--quiet", "--force", "origin", "HEAD:refs/heads/__STORAGE__")
        return git(work, "rev-parse", "HEAD").strip()


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


DAMAGE: dict[str, tuple[Callable[[Path, Path], dict[str, str] | None], str]] = {
    "corrupt-cursor": (
        lambda _o, _t: {"users/octo/cursor.json": '{"schema_version": 1, "user": "octo", "last_event_id": '},
        r"users/octo/cursor\.json on refs/heads/__STORAGE__ is not valid JSON",
    ),
    "newer-schema-meta": (
        lambda _o, _t: {"meta.json": json.dumps({"schema_version": 3, "symbiote": True})},
        r"meta\.json on refs/heads/__STORAGE__ .*schema_version 3, newer than this Symbiote",
    ),
    "newer-schema-file": (
        lambda _o, _t: {"users/octo/cursor.json": json.dumps({"schema_version": 7, "user": "octo"})},
        r"users/octo/cursor\.json has schema_version 7, newer than this Symbiote",
    ),
    "not-our-branch": (
        lambda _o, _t: None,
        r"refs/heads/__STORAGE__ is not a Symbiote storage branch",
    ),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
def test_damaged_storage_is_one_clear_error_and_nothing_is_overwritten(
    name: str, fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", **QUICK)
    assert run(fork, env, "poll", "--once").returncode == 0
    damage, pattern = DAMAGE[name]
    files = damage(bare_origin, tmp_path)
    if files is None:  # someone else's branch of that name
        tip = write_storage(bare_origin, {"README.md": "# my notes\n", "data.json": "{}"}, parent=False, tmp=tmp_path)
    else:
        tip = write_storage(bare_origin, files, tmp=tmp_path)
    before = branch_files(bare_origin)
    fake.issue_opened(USER, "octo/hello", 1, "bug")
    for args in (("poll", "--once"), ("poll", "--interval", "0.1")):
        done = run(fork, env, *args, timeout=30)  # a long-running poll must exit too: no crash loop
        assert done.returncode == 1, (args, done.stderr)
        assert re.search(pattern, one_error_line(done)), done.stderr
    reading = run(fork, env, "store", "events", timeout=30)
    assert "Traceback" not in reading.stderr
    if reading.returncode:
        assert re.search(pattern, one_error_line(reading)), reading.stderr
    assert branch_tip(bare_origin) == tip  # nothing written
    assert branch_files(bare_origin) == before
    assert not fake.comments  # and nothing done
    figures("storage-damage", case=name, faults=1, trials=3, duplicates=0, losses=0)


def test_corrupt_events_file_is_a_clear_error_and_never_double_posts(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", **QUICK)
    assert run(fork, env, "poll", "--once").returncode == 0
    day = time.strftime("%Y-%m-%d", time.gmtime())
    write_storage(bare_origin, {f"users/octo/events/{day}.json": "[[[ not json"}, tmp=tmp_path)
    before = branch_files(bare_origin)
    fake.issue_opened(USER, "octo/hello", 1, "bug")
    for _ in range(3):
        done = run(fork, env, "poll", "--once")
        assert done.returncode == 1
        assert f"users/octo/events/{day}.json on refs/heads/__STORAGE__ is not valid JSON" in one_error_line(done)
    after = branch_files(bare_origin)
    # Only the session claim (its own file) was written; the damaged file and the rest are untouched.
    assert {p for p in set(before) | set(after) if before.get(p) != after.get(p)} <= {"users/octo/session.json"}
    # Read at start (the write budget counts stored writes), so nothing is done; were it read only
    # at the commit, the replays would find the marker: either way never twice.
    assert sum(ack_counts(fake).values()) <= 1
    figures("storage-damage", case="corrupt-events-file", faults=1, trials=3, duplicates=0, losses=0)


def test_protected_branch_refusing_pushes_is_a_bounded_clear_error(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    env = make_env(fake, tmp_path / "home", **QUICK)
    assert run(fork, env, "poll", "--once").returncode == 0
    tip = branch_tip(bare_origin)
    calls = tmp_path / "hook-calls"
    hook = bare_origin / "hooks" / "pre-receive"
    hook.write_text(
        f"#!/bin/sh\necho call >> '{calls}'\necho 'error: GH006: Protected branch update failed' >&2\nexit 1\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    fake.issue_opened(USER, "octo/hello", 1, "bug")
    for _ in range(2):
        done = run(fork, env, "poll", "--once")
        assert done.returncode == 1
        line = one_error_line(done)
        assert "refs/heads/__STORAGE__" in line
        assert "refused" in line
        assert "Protected branch" in line
    assert calls.read_text(encoding="utf-8").count("call") <= 2  # once per run: no retry loop
    assert branch_tip(bare_origin) == tip
    assert not fake.comments  # the session could not be claimed, so nothing was done
    hook.unlink()
    assert run(fork, env, "poll", "--once").returncode == 0  # writable again: catches up
    verdict = verify(fake, bare_origin, baseline=0)
    verdict.assert_ok()
    assert verdict.acked == 1
    figures("storage-damage", case="protected-branch", faults=2, trials=3, duplicates=0, losses=0)
