"""End to end: ``symbiote serve`` as a subprocess on loopback, the fake GitHub, a bare-repo origin.

Two users at once, each event acknowledged once; a signed state request queued and executed once
by the right session, its result readable; the worker killed (SIGKILL) and restarted mid-session
resumes from storage; a superseded poller exits; and actions mode, where a real ``symbiote poll``
reports its session back through signed callbacks.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from symbiote_cli.core import signing

try:
    from .conftest import git, git_env
    from .fakegithub import FakeGitHub
except ImportError:
    from conftest import git, git_env  # type: ignore[no-redef]
    from fakegithub import FakeGitHub  # type: ignore[no-redef]

SECRET = "e2e-callback-secret-0123456789"
TOKEN = "e2e-worker-token-0123456789"
BRANCH = "__STORAGE__"
BEARER = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = pytest.mark.timeout(120)


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (httpx.HTTPError, OSError):
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def on_branch(origin: Path, path: str) -> Any:
    done = subprocess.run(
        ["git", "show", f"{BRANCH}:{path}"], cwd=origin, env=git_env(), capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def acks(fake: FakeGitHub, repo: str, number: int) -> int:
    return sum("Symbiote noticed" in c.body for c in fake.comments_on(repo, number))


@dataclass
class Worker:
    """One ``symbiote serve`` process."""

    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "symbiote_cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.get("/health").status_code == 200, timeout=20, what="the worker to serve")
        return self

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, timeout=30, **kwargs)

    def signed_post(self, path: str, payload: Any) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **signing.sign(SECRET, body, int(time.time()))}
        return self.post(path, content=body, headers=headers)

    def status(self, user: str) -> dict[str, Any]:
        response = self.get(f"/session/{user}/status", headers=BEARER)
        data: dict[str, Any] = response.json()
        return data

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class E2E:
    fake: FakeGitHub
    origin: Path
    fork: Path
    tmp: Path
    env_for: Callable[..., dict[str, str]]
    workers: list[Worker] = field(default_factory=list)

    def env(self, storage_repo: Path, **extra: str) -> dict[str, str]:
        return self.env_for(
            self.fake,
            SYMBIOTE_STORAGE_REPO=str(storage_repo),
            SYMBIOTE_INTERVAL="0.2",
            SYMBIOTE_SECONDS_BETWEEN_WRITES="0",
            SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0",
            SYMBIOTE_HTTP_RETRIES="0",
            SYMBIOTE_CALLBACK_SECRET=SECRET,
            SYMBIOTE_WORKER_TOKEN=TOKEN,
            **extra,
        )

    def worker(self, **extra: str) -> Worker:
        worker = Worker(self.env(self.fork, **extra), self.tmp / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker.start()

    def clone(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir()
        git(path, "init", "--quiet", "--initial-branch=main")
        git(path, "remote", "add", "origin", str(self.origin))
        return path

    def poll_once(self, user: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``symbiote poll --once`` from another clone of the origin (another machine, say)."""
        clone = self.clone(f"cli-{user}-{time.monotonic_ns()}")
        return subprocess.run(
            [sys.executable, "-m", "symbiote_cli", "poll", "--user", user, "--once", *args],
            env=self.env(clone),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def e2e(
    fake_github: FakeGitHub,
    bare_origin: Path,
    fork: Path,
    tmp_path: Path,
    env_for: Callable[..., dict[str, str]],
) -> Iterator[E2E]:
    fake_github.poll_interval = 0  # the poller obeys X-Poll-Interval: keep the run short
    for login in ("alice", "bob"):
        fake_github.add_user(login)
        fake_github.add_repo(f"{login}/demo")
        fake_github.add_issue(f"{login}/demo", 1, "First", author=login)
    world = E2E(fake_github, bare_origin, fork, tmp_path, env_for)
    try:
        yield world
    finally:
        for worker in world.workers:
            worker.stop()
    assert fake_github.token is not None
    for worker in world.workers:
        text = worker.log.read_text(encoding="utf-8", errors="replace")
        for secret in (fake_github.token, SECRET, TOKEN):
            assert secret not in text, f"a secret leaked into {worker.log.name}"


def test_two_users_state_request_and_restart(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    worker = e2e.worker()

    # -- two users at once ------------------------------------------------------------
    answers: dict[str, httpx.Response] = {}

    def start(user: str) -> None:
        answers[user] = worker.post(f"/start/{user}", headers=BEARER)

    threads = [threading.Thread(target=start, args=(user,)) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {u: r.status_code for u, r in answers.items()} == {"alice": 202, "bob": 202}
    first = {u: r.json()["session_id"] for u, r in answers.items()}
    assert first["alice"] != first["bob"]
    for user in ("alice", "bob"):
        wait_for(lambda u=user: on_branch(origin, f"users/{u}/cursor.json"), what=f"{user}'s baseline")
        assert on_branch(origin, f"users/{user}/session.json")["id"] == first[user]
    again = worker.post("/start/alice", headers=BEARER).json()
    assert (again["session_id"], again["existing"]) == (first["alice"], True)
    assert worker.get("/health").json()["sessions"]["local_pollers"] == 2

    fake.issue_opened("alice", "alice/demo", 2, "Alice's bug", "")
    fake.issue_opened("bob", "bob/demo", 2, "Bob's bug", "")
    wait_for(lambda: acks(fake, "alice/demo", 2) == 1 and acks(fake, "bob/demo", 2) == 1, what="both acks")
    time.sleep(1.0)  # several more cycles: still once each
    assert (acks(fake, "alice/demo", 2), acks(fake, "bob/demo", 2)) == (1, 1)

    # -- a signed state request, queued for alice's session ------------------------------
    request = {
        "kind": "comment",
        "repo": "alice/demo",
        "issue_number": 1,
        "body": "requested through the worker",
        "idempotency_key": "e2e-state-1",
        "user": "alice",
    }
    queued = worker.signed_post("/state/e2e-state-1", request)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    assert queued.json()["session_id"] == first["alice"]
    result = wait_for(
        lambda: (r := worker.get("/state/e2e-state-1", headers=BEARER).json()).get("status") == "done" and r,
        what="the state request's result",
    )
    assert result["user"] == "alice"
    assert result["result"]["status"] == "done"
    assert len(fake.comments_on("alice/demo", 1)) == 1
    assert on_branch(origin, "users/alice/inbox/e2e-state-1.json") is None
    assert on_branch(origin, "outbox/e2e-state-1.json")["user"] == "alice"
    assert fake.comments_on("bob/demo", 1) == []

    # -- SIGKILL mid-session, events while down, restart -----------------------------
    worker.kill()
    fake.issue_opened("alice", "alice/demo", 3, "While the worker was down", "")
    assert on_branch(origin, "users/alice/session.json")["status"] == "active"
    restarted = e2e.worker()
    wait_for(lambda: acks(fake, "alice/demo", 3) == 1, what="the resumed session to catch up")
    for user in ("alice", "bob"):
        status = wait_for(lambda u=user: (s := restarted.status(u)).get("poller") and s, what=f"{user} resumed")
        assert status["live"] is True
        assert status["poller"]["running"] is True
        assert status["session_id"] != first[user]
    fake.issue_opened("bob", "bob/demo", 3, "After the restart", "")
    wait_for(lambda: acks(fake, "bob/demo", 3) == 1, what="bob's ack after the restart")
    time.sleep(0.6)
    assert [acks(fake, "alice/demo", n) for n in (2, 3)] == [1, 1]
    assert [acks(fake, "bob/demo", n) for n in (2, 3)] == [1, 1]
    assert len(fake.comments_on("alice/demo", 1)) == 1  # the state request ran once, across the restart
    events = restarted.get("/storage/events/alice", headers=BEARER).json()["events"]
    assert sorted(e["event_id"] for e in events) == sorted({e["event_id"] for e in events})


def test_superseded_poller_exits(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    worker = e2e.worker()
    session_id = worker.post("/start/alice", headers=BEARER).json()["session_id"]
    wait_for(lambda: on_branch(origin, "users/alice/cursor.json"), what="the baseline")
    # Another machine runs `symbiote poll` for the same user: its newer session takes over.
    done = e2e.poll_once("alice", "--json")
    assert done.returncode == 0, done.stderr
    status = wait_for(
        lambda: (s := worker.status("alice"))["poller"] and not s["poller"]["running"] and s,
        what="the superseded poller to exit",
    )
    assert status["poller"]["superseded"] is True
    assert status["poller"]["exit_reason"] == "superseded by a newer session"
    assert status["session_id"] != session_id  # the record is the newer session's, not clobbered
    assert worker.get("/health").json()["sessions"]["local_pollers"] == 0
    fake.issue_opened("alice", "alice/demo", 4, "Nobody polls now", "")
    time.sleep(1.0)
    assert acks(fake, "alice/demo", 4) == 0
    # Starting again gives the user a poller once more, and it picks the event up once.
    restarted = worker.post("/start/alice", headers=BEARER).json()
    assert restarted["existing"] is False
    wait_for(lambda: acks(fake, "alice/demo", 4) == 1, what="the new session to act")


def test_actions_mode_session_reports_through_signed_callbacks(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    fake.add_repo("octo/fork")
    fake.add_workflow("octo/fork", "symbiote-main.yml", inputs=["user", "duration", "session_id", "callback_url"])
    worker = e2e.worker(SYMBIOTE_REPO="octo/fork")
    started = worker.post("/start/alice", headers=BEARER)
    assert started.status_code == 202, started.text
    session_id = started.json()["session_id"]
    [dispatch] = fake.workflow_dispatches
    assert dispatch.inputs["session_id"] == session_id
    assert dispatch.inputs["callback_url"] == f"{worker.url}/session/callback"
    assert on_branch(origin, "users/alice/session.json")["status"] == "starting"
    # What the dispatched run does: poll with the session id, reporting to the callback URL.
    done = e2e.poll_once("alice", "--session-id", session_id, "--callback-url", dispatch.inputs["callback_url"])
    assert done.returncode == 0, done.stderr
    stored = wait_for(
        lambda: (s := on_branch(origin, "users/alice/session.json"))["status"] == "ended" and s,
        what="the ended session",
    )
    assert stored["id"] == session_id
    assert stored["counts"]["cycles"] == 1
    status = worker.status("alice")
    assert (status["status"], status["live"]) == ("ended", False)
    # an unsigned or replayed report changes nothing
    tip = git(origin, "rev-parse", BRANCH).strip()
    forged = worker.post("/session/callback", json={"kind": "session", **stored, "status": "active"})
    assert forged.status_code == 401
    assert git(origin, "rev-parse", BRANCH).strip() == tip
