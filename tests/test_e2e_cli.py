"""End to end: the real ``symbiote`` CLI as a subprocess, against the fake GitHub on
loopback and a bare-repo origin. A canary token is checked in every output."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub

from symbiote_cli.core import sessions
from symbiote_cli.core.privacy import generate_key
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

CLI = [sys.executable, "-m", "symbiote_cli"]


class Runner:
    def __init__(self, fake: FakeGitHub, fork: Path, env: dict[str, str]) -> None:
        self.fake = fake
        self.fork = fork
        self.env = env
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:  # noqa: A002
        done = subprocess.run(
            [*CLI, *args],
            cwd=self.fork,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.outputs.append(done.stdout + done.stderr)
        return done


@pytest.fixture
def cli(
    fake_github: FakeGitHub, fork: Path, env_for: Callable[..., dict[str, str]]
) -> Any:
    fake_github.add_repo("octo/hello")
    env = env_for(fake_github, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
    runner = Runner(fake_github, fork, env)
    yield runner
    token = fake_github.token or ""
    for text in runner.outputs:
        assert token not in text, "the token leaked into CLI output"


def acks(fake: FakeGitHub, repo: str, number: int) -> int:
    return sum("<!-- symbiote:" in c.body for c in fake.comments_on(repo, number))


def branch_history(origin: Path) -> str:
    return subprocess.run(
        ["git", "log", "-p", "--all", "--format=%H %an <%ae> %s"],
        cwd=origin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_help_lists_every_command(cli: Runner) -> None:
    done = cli("--help")
    assert done.returncode == 0
    for command in ("poll", "route", "act", "store"):
        assert command in done.stdout


def test_baseline_then_exactly_once_acks_and_restart(cli: Runner, bare_origin: Path) -> None:
    fake = cli.fake
    fake.issue_opened("octo", "octo/hello", 1, "before symbiote")
    first = cli("poll", "--once")
    assert first.returncode == 0, first.stderr
    assert "baseline" in first.stderr
    assert acks(fake, "octo/hello", 1) == 0

    fake.issue_opened("octo", "octo/hello", 2, "new bug")
    fake.issue_comment("octo", "octo/hello", 2, "please look")
    second = cli("poll", "--once")
    assert second.returncode == 0, second.stderr
    assert acks(fake, "octo/hello", 2) == 2
    assert "-> app" in second.stdout

    # Restart twice more: our acknowledgments come back as IssueCommentEvents and are ignored.
    for _ in range(2):
        again = cli("poll", "--once")
        assert again.returncode == 0, again.stderr
    assert acks(fake, "octo/hello", 2) == 2
    assert "Symbiote's own comment" in cli.outputs[-2]

    history = branch_history(bare_origin)
    assert "Symbiote <symbiote@users.noreply.github.com>" in history
    listed = cli("store", "events", "--user", "octo", "--json")
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {r["route"] for r in records} >= {"app", "ignore"}
    cursor = json.loads(cli("store", "get", "users/octo/cursor.json").stdout)
    assert cursor["schema_version"] == 1
    assert "poll octo" in cli("store", "log").stdout


def test_kernel_repos_untouched(cli: Runner) -> None:
    fake = cli.fake
    fake.add_repo("octo/kernel", files={".github/.ubiquity-os.config.yml": "plugins: []\n"})
    cli("poll", "--once")
    fake.issue_opened("octo", "octo/kernel", 1)
    done = cli("poll", "--once", "--json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(x) for x in done.stdout.splitlines() if '"kind": "event"' in x]
    assert events[0]["route"] == "kernel"
    assert not fake.comments


def test_private_repo_data_absent_from_branch(cli: Runner, bare_origin: Path) -> None:
    fake = cli.fake
    fake.add_repo("octo/hush", private=True)
    cli("poll", "--once")
    fake.issue_opened("octo", "octo/hush", 1, "Confidential roadmap", "do not leak")
    done = cli("poll", "--once")
    assert done.returncode == 0, done.stderr
    assert acks(fake, "octo/hush", 1) == 1
    history = branch_history(bare_origin)
    for secret in ("octo/hush", "Confidential roadmap", "do not leak"):
        assert secret not in history


def test_sealed_private_records_readable_only_with_the_key(cli: Runner) -> None:
    key = generate_key()
    fake = cli.fake
    fake.add_repo("octo/hush", private=True)
    cli("poll", "--once")
    fake.issue_opened("octo", "octo/hush", 1)
    cli("poll", "--once", env={"SYMBIOTE_STORAGE_KEY": key})
    with_key = cli("store", "events", "--user", "octo", env={"SYMBIOTE_STORAGE_KEY": key})
    without = cli("store", "events", "--user", "octo")
    assert "octo/hush" in with_key.stdout
    assert "octo/hush" not in without.stdout
    wrong = cli("store", "events", "--user", "octo", env={"SYMBIOTE_STORAGE_KEY": generate_key()})
    assert wrong.returncode != 0
    assert "SYMBIOTE_STORAGE_KEY" in wrong.stderr
    assert key not in "".join(cli.outputs)


def test_route_json_and_bad_input(cli: Runner) -> None:
    event = {
        "id": "40000000001",
        "type": "IssuesEvent",
        "actor": {"login": "octo"},
        "repo": {"name": "octo/hello"},
        "payload": {"action": "opened", "issue": {"number": 1}},
        "public": True,
    }
    done = cli("route", "-", "--json", input=json.dumps(event))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "event_id": "40000000001",
        "type": "IssuesEvent",
        "repo": "octo/hello",
        "route": "app",
        "reason": "public repo, safe action: comment",
    }
    kernel = cli("route", "-", "--json", input=json.dumps(event), env={"SYMBIOTE_KERNEL_OWNERS": "octo"})
    assert json.loads(kernel.stdout)["route"] == "kernel"
    for bad in ("{", "[1, 2]", json.dumps({**event, "id": "x"}), ""):
        failed = cli("route", "-", input=bad)
        assert failed.returncode == 2
        assert failed.stderr.count("\n") == 1
        assert "Traceback" not in failed.stderr
    missing = cli("route", "nope.json")
    assert missing.returncode == 2


def test_act_is_idempotent_and_state_ids_act_once(cli: Runner) -> None:
    fake = cli.fake
    fake.add_issue("octo/hello", 5, "an issue")
    request = {"kind": "comment", "repo": "octo/hello", "issue_number": 5, "body": "hi", "idempotency_key": "k-5"}
    first = cli("act", "-", input=json.dumps(request))
    second = cli("act", "-", input=json.dumps(request))
    assert first.returncode == 0, first.stderr
    assert "done" in first.stdout
    assert "already_done" in second.stdout
    assert acks(fake, "octo/hello", 5) == 1
    other = {**request, "idempotency_key": "k-6"}
    for _ in range(2):
        done = cli("act", "-", "--state-id", "state-6", "--json", input=json.dumps(other))
        assert done.returncode == 0, done.stderr
    assert acks(fake, "octo/hello", 5) == 2
    outbox = json.loads(cli("store", "get", "outbox/state-6.json").stdout)
    assert outbox["status"] == "done"
    assert outbox["user"] == "octo"  # the token's owner, resolved when SYMBIOTE_USER is unset
    dry = cli("act", "-", "--dry-run", input=json.dumps({**request, "idempotency_key": "k-7"}))
    assert "planned" in dry.stdout
    assert acks(fake, "octo/hello", 5) == 2


def test_act_failures_are_clear(cli: Runner) -> None:
    cli.fake.add_issue("octo/hello", 9, "locked", locked=True)
    cli.fake.add_user("stranger", "ghp_stranger_token_123")
    request = {"kind": "comment", "repo": "octo/hello", "issue_number": 9, "body": "x", "idempotency_key": "k9"}
    locked = cli("act", "-", input=json.dumps(request), env={"GH_PAT": "ghp_stranger_token_123"})
    assert locked.returncode == 1
    assert "failed" in locked.stdout
    bad = cli("act", "-", input='{"kind": "comment"}')
    assert bad.returncode == 2
    assert "request" in bad.stderr


@pytest.mark.parametrize(
    ("env", "args", "needle"),
    [
        ({"GH_PAT": ""}, ("poll", "--once"), "set GH_PAT"),
        ({"GH_PAT": "ghp_canary_revoked_0000"}, ("poll", "--once"), "GH_PAT"),
        ({}, ("poll", "--duration", "forever"), "bad duration"),
        ({"SYMBIOTE_INTERVAL": "-3"}, ("poll", "--once"), "interval"),
    ],
)
def test_configuration_errors_exit_2_with_one_line(
    cli: Runner, env: dict[str, str], args: tuple[str, ...], needle: str
) -> None:
    done = cli(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr
    assert "ghp_canary_revoked_0000" not in done.stderr


def test_sigint_finishes_and_flushes_within_seconds(cli: Runner) -> None:
    cli("poll", "--once")
    cli.fake.poll_interval = 1
    proc = subprocess.Popen(
        [*CLI, "poll", "--interval", "0.2"],
        cwd=cli.fork,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 30
        while time.time() < deadline and len(cli.fake.requests_to("GET", r"/users/octo/events")) < 3:
            time.sleep(0.1)
        cli.fake.issue_opened("octo", "octo/hello", 3)
        while time.time() < deadline and not acks(cli.fake, "octo/hello", 3):
            time.sleep(0.1)
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
        elapsed = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    cli.outputs.append(out + err)
    assert proc.returncode == 0, err
    assert elapsed < 7.5
    assert "stopped by signal" in out
    session = json.loads(cli("store", "get", "users/octo/session.json").stdout)
    assert session["status"] == "ended"
    assert acks(cli.fake, "octo/hello", 3) == 1


def test_duration_ends_the_run(cli: Runner) -> None:
    done = cli("poll", "--duration", "1s", "--interval", "0.3")
    assert done.returncode == 0, done.stderr
    assert "deadline reached" in done.stdout


def test_store_gc_expires_silent_sessions_and_leaves_a_damaged_one(cli: Runner) -> None:
    """``store gc`` is the worker's gc: a silent session is written as expired, a session file that
    does not parse is left for a human (not a crash), and event days past retention go."""
    now = time.time()
    silent = sessions.new_session("octo", "local", now - 86400, deadline_s=None, session_id="silent")
    old_day = layout.events_path("octo", layout.day_of(now - 60 * 86400))
    seed = {
        layout.session_path("octo"): silent.model_dump(mode="json"),
        layout.session_path("bob"): {"schema_version": 1, "id": 5},
        old_day: layout.day_json({}),
    }
    with Storage(cli.fork) as storage:
        storage.update(lambda _view: seed, "test: seed")
    done = cli("store", "gc")
    assert done.returncode == 0, done.stderr
    assert "removed 1 files" in done.stdout
    assert old_day in done.stdout
    stored = json.loads(cli("store", "get", layout.session_path("octo")).stdout)
    assert stored["status"] == "expired"
    assert json.loads(cli("store", "get", layout.session_path("bob")).stdout) == {"schema_version": 1, "id": 5}
    again = cli("store", "gc")
    assert again.returncode == 0, again.stderr
    assert "removed 0 files" in again.stdout
