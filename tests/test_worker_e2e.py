"""End to end: ``symbiote serve`` as a subprocess on loopback, the fake GitHub, a bare-repo origin.

Local mode serves the owner of its token only (another user is refused); each event acknowledged
once; a signed state request queued and executed once by the session, its result readable; the
worker killed (SIGKILL) and restarted mid-session resumes from storage; a superseded poller exits;
actions mode, where a real ``symbiote poll`` reports its session back through signed callbacks;
two worker processes sharing the state repo, and a restart, where replayed signed requests
dispatch nothing more; a run the worker refuses exits non-zero; a chained run continues its session.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
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
        headers = {
            "Content-Type": "application/json",
            **signing.sign(SECRET, body, int(time.time()), method="POST", path=path),
        }
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

    def worker(self, storage_repo: Path | None = None, **extra: str) -> Worker:
        env = self.env(storage_repo or self.fork, **extra)
        worker = Worker(env, self.tmp / f"worker-{len(self.workers)}.log")
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
    fake_github.add_repo("octo/demo")
    fake_github.add_issue("octo/demo", 1, "First", author="octo")
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


def test_one_user_state_request_and_restart(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    worker = e2e.worker()

    # -- local mode: the owner of the worker's token, and nobody else ----------------------------
    refused = worker.post("/start/alice", headers=BEARER)
    assert (refused.status_code, refused.json()["error"]) == (403, "not_served")
    first = worker.post("/start/octo", headers=BEARER)
    assert first.status_code == 202, first.text
    session_id = first.json()["session_id"]
    wait_for(lambda: on_branch(origin, "users/octo/cursor.json"), what="octo's baseline")
    assert on_branch(origin, "users/alice/session.json") is None
    again = worker.post("/start/octo", headers=BEARER).json()
    assert (again["session_id"], again["existing"]) == (session_id, True)
    assert worker.get("/health").json() == {"status": "ok"}
    assert worker.get("/health", headers=BEARER).json()["sessions"]["local_pollers"] == 1

    fake.issue_opened("octo", "octo/demo", 2, "A bug", "")
    wait_for(lambda: acks(fake, "octo/demo", 2) == 1, what="the ack")
    time.sleep(1.0)  # several more cycles: still once
    assert acks(fake, "octo/demo", 2) == 1

    # -- a signed state request, queued for the session --------------------------------------------
    request = {
        "kind": "comment",
        "repo": "octo/demo",
        "issue_number": 1,
        "body": "requested through the worker",
        "idempotency_key": "e2e-state-1",
        "user": "octo",
    }
    queued = worker.signed_post("/state/e2e-state-1", request)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "queued"
    result = wait_for(
        lambda: (r := worker.get("/state/e2e-state-1", headers=BEARER).json()).get("status") == "done" and r,
        what="the state request's result",
    )
    assert result["result"]["status"] == "done"
    assert len(fake.comments_on("octo/demo", 1)) == 1

    # -- SIGKILL mid-session, events while down, restart -----------------------------------------
    worker.kill()
    fake.issue_opened("octo", "octo/demo", 3, "While the worker was down", "")
    assert on_branch(origin, "users/octo/session.json")["status"] == "active"
    restarted = e2e.worker()
    wait_for(lambda: acks(fake, "octo/demo", 3) == 1, what="the resumed session to catch up")
    status = wait_for(lambda: (s := restarted.status("octo")).get("poller") and s, what="octo resumed")
    assert status["live"] is True
    assert status["session_id"] != session_id
    # the same signed request again, to the restarted worker: answered from the outbox, not run again
    replayed = restarted.signed_post("/state/e2e-state-1", request)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["duplicate"] is True
    time.sleep(0.6)
    assert [acks(fake, "octo/demo", n) for n in (2, 3)] == [1, 1]
    assert len(fake.comments_on("octo/demo", 1)) == 1  # the state request ran once, across the restart


def test_superseded_poller_exits(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    worker = e2e.worker()
    session_id = worker.post("/start/octo", headers=BEARER).json()["session_id"]
    wait_for(lambda: on_branch(origin, "users/octo/cursor.json"), what="the baseline")
    # Another machine runs `symbiote poll` for the same user: its newer session takes over.
    done = e2e.poll_once("octo", "--json")
    assert done.returncode == 0, done.stderr
    status = wait_for(
        lambda: (s := worker.status("octo"))["poller"] and not s["poller"]["running"] and s,
        what="the superseded poller to exit",
    )
    assert status["poller"]["superseded"] is True
    assert status["poller"]["exit_reason"] == "superseded by a newer session"
    assert status["session_id"] != session_id  # the record is the newer session's, not clobbered
    assert worker.get("/health", headers=BEARER).json()["sessions"]["local_pollers"] == 0
    fake.issue_opened("octo", "octo/demo", 4, "Nobody polls now", "")
    time.sleep(1.0)
    assert acks(fake, "octo/demo", 4) == 0
    # Starting again gives the user a poller once more, and it picks the event up once.
    restarted = worker.post("/start/octo", headers=BEARER).json()
    assert restarted["existing"] is False
    wait_for(lambda: acks(fake, "octo/demo", 4) == 1, what="the new session to act")


def test_actions_mode_session_reports_through_signed_callbacks(e2e: E2E) -> None:
    fake, origin = e2e.fake, e2e.origin
    fake.add_repo("octo/fork")
    fake.add_workflow("octo/fork", "symbiote-main.yml", inputs=["user", "duration", "session_id", "callback_url"])
    worker = e2e.worker(SYMBIOTE_REPO="octo/fork")
    assert worker.post("/start/alice", headers=BEARER).status_code == 403  # the fork's owner only
    started = worker.post("/start/octo", headers=BEARER)
    assert started.status_code == 202, started.text
    session_id = started.json()["session_id"]
    [dispatch] = fake.workflow_dispatches
    assert dispatch.inputs["session_id"] == session_id
    assert dispatch.inputs["callback_url"] == f"{worker.url}/session/callback"
    assert on_branch(origin, "users/octo/session.json")["status"] == "starting"
    # What the dispatched run does: poll with the session id, reporting to the callback URL.
    done = e2e.poll_once("octo", "--session-id", session_id, "--callback-url", dispatch.inputs["callback_url"])
    assert done.returncode == 0, done.stderr
    stored = wait_for(
        lambda: (s := on_branch(origin, "users/octo/session.json"))["status"] == "ended" and s,
        what="the ended session",
    )
    assert stored["id"] == session_id
    assert stored["counts"]["cycles"] == 1
    status = worker.status("octo")
    assert (status["status"], status["live"]) == ("ended", False)
    # an unsigned or replayed report changes nothing
    tip = git(origin, "rev-parse", BRANCH).strip()
    forged = worker.post("/session/callback", json={"kind": "session", **stored, "status": "active"})
    assert forged.status_code == 401
    assert git(origin, "rev-parse", BRANCH).strip() == tip


def test_two_worker_processes_and_a_restart_dispatch_each_signed_request_once(e2e: E2E) -> None:
    """The issue: the replay cache lived in one process, so a replayed dispatch ran the workflow twice.
    Now a replay on another replica, or after a restart, finds its id on the branch and does nothing."""
    fake = e2e.fake
    fake.add_repo("octo/fork")
    fake.add_workflow("octo/fork", "symbiote-main.yml", inputs=["user", "duration", "session_id", "callback_url"])
    fake.add_workflow("octo/fork", "symbiote-auth.yml", inputs=["state_id", "worker_url"])
    first = e2e.worker(SYMBIOTE_REPO="octo/fork")
    second = e2e.worker(e2e.clone("replica"), SYMBIOTE_REPO="octo/fork")
    now = int(time.time())
    start = signing.sign(SECRET, b"", now, method="POST", path="/start/octo")
    body = json.dumps({"kind": "comment", "repo": "octo/demo", "issue_number": 1, "body": "once",
                       "idempotency_key": "k-once", "user": "octo"}).encode()  # fmt: skip
    state = {"Content-Type": "application/json", **signing.sign(SECRET, body, now, method="POST", path="/state/s-once")}
    assert first.post("/start/octo", headers=start).status_code == 202
    assert first.post("/state/s-once", content=body, headers=state).status_code == 202
    assert [d.workflow for d in fake.workflow_dispatches] == ["symbiote-main.yml", "symbiote-auth.yml"]
    tip = git(e2e.origin, "rev-parse", BRANCH).strip()
    replayed = [second.post("/start/octo", headers=start), second.post("/state/s-once", content=body, headers=state)]
    assert [r.status_code for r in replayed] == [202, 202], [r.text for r in replayed]
    assert replayed[0].json()["existing"] is True
    first.kill()
    restarted = e2e.worker(SYMBIOTE_REPO="octo/fork")
    again = [restarted.post("/start/octo", headers=start), restarted.post("/state/s-once", content=body, headers=state)]
    assert [r.status_code for r in again] == [202, 202], [r.text for r in again]
    assert len(fake.workflow_dispatches) == 2  # no second dispatch anywhere
    assert git(e2e.origin, "rev-parse", BRANCH).strip() == tip  # and nothing written


def test_a_run_the_worker_refuses_exits_non_zero_with_an_error_annotation(e2e: E2E) -> None:
    """The issue: the run printed "superseded" and exited 0, so nothing looked wrong."""
    fake = e2e.fake
    fake.add_repo("octo/fork")
    fake.add_workflow("octo/fork", "symbiote-main.yml", inputs=["user", "duration", "session_id", "callback_url"])
    worker = e2e.worker(SYMBIOTE_REPO="octo/fork")
    worker.post("/start/octo", headers=BEARER)
    url = f"{worker.url}/session/callback"
    # The run keeps its own records in its own repository (as a user's fork does).
    own_origin = e2e.tmp / "own-origin.git"
    git(e2e.tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(own_origin))
    clone = e2e.tmp / "refused"
    clone.mkdir()
    git(clone, "init", "--quiet", "--initial-branch=main")
    git(clone, "remote", "add", "origin", str(own_origin))
    done = subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "poll", "--user", "octo", "--once",
         "--session-id", "not-the-workers-session", "--callback-url", url],
        env={**e2e.env(clone), "GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "777"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "::error" in done.stdout + done.stderr
    assert "cannot continue" in done.stdout + done.stderr


def test_a_chained_run_continues_its_session(e2e: E2E) -> None:
    """poll --chain hands over at the deadline; the successor (same session id, a new run id) goes on."""
    clone = e2e.clone("chain")

    def run(run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "symbiote_cli", "poll", "--user", "octo", "--duration", "1s", *args],
            env={**e2e.env(clone), "GITHUB_RUN_ID": run_id},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    first = run("111", "--session-id", "chained-session")
    assert first.returncode == 0, first.stderr
    assert "deadline reached" in first.stdout
    ended = on_branch(e2e.origin, "users/octo/session.json")
    assert (ended["id"], ended["status"], ended["run_id"]) == ("chained-session", "ended", "111")
    second = run("222", "--session-id", "chained-session")
    assert second.returncode == 0, second.stderr
    assert "superseded" not in second.stdout + second.stderr
    stored = on_branch(e2e.origin, "users/octo/session.json")
    assert (stored["id"], stored["run_id"]) == ("chained-session", "222")
    assert stored["runs"] == ["111", "222"]
    assert stored["counts"]["cycles"] >= 1


def test_the_auth_workflow_fetches_its_request_from_the_worker_and_reports_the_result(e2e: E2E) -> None:
    """Actions mode end to end: the dispatch carries the state id and the worker's URL only; `symbiote act`
    (what symbiote-auth.yml runs, in the fork's own checkout) fetches the request, acts, reports back."""
    fake = e2e.fake
    fake.add_repo("octo/fork")
    fake.add_workflow("octo/fork", "symbiote-auth.yml", inputs=["state_id", "worker_url"])
    worker = e2e.worker(SYMBIOTE_REPO="octo/fork")
    request = {"kind": "comment", "repo": "octo/demo", "issue_number": 1, "body": "fetched, not in the inputs",
               "idempotency_key": "k-fetch", "user": "octo"}  # fmt: skip
    assert worker.signed_post("/state/s-fetch", request).status_code == 202
    [dispatch] = fake.workflow_dispatches
    assert dispatch.inputs == {"state_id": "s-fetch", "worker_url": worker.url}
    own_origin = e2e.tmp / "fork-origin.git"
    git(e2e.tmp, "init", "--quiet", "--bare", "--initial-branch=main", str(own_origin))
    checkout = e2e.tmp / "fork-checkout"
    checkout.mkdir()
    git(checkout, "init", "--quiet", "--initial-branch=main")
    git(checkout, "remote", "add", "origin", str(own_origin))
    done = subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "act", "--inputs-env", "SYMBIOTE_INPUTS", "--json"],
        env={**e2e.env(checkout), "SYMBIOTE_INPUTS": json.dumps(dispatch.inputs)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "done"
    [comment] = [c for c in fake.comments_on("octo/demo", 1) if "fetched, not in the inputs" in c.body]
    assert comment.author == "octo"
    answer = wait_for(
        lambda: (r := worker.get("/state/s-fetch", headers=BEARER).json()).get("status") == "done" and r,
        what="the reported result",
    )
    assert answer["user"] == "octo"
    assert worker.get("/state/s-fetch/request", headers=BEARER).status_code == 404  # dropped once done
