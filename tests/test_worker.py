"""The ``symbiote serve`` worker against a real git storage branch and the fake GitHub.

Every endpoint, its authentication (bearer or HMAC signature), the rejection of forged, unsigned,
stale and replayed requests with nothing written to the branch, sessions in local and actions
mode, state requests (queued for the live session, executed directly, dispatched), the kernel's
form, cleanup, restart, and a schemathesis run over the app's own OpenAPI description.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.core import NOT_SET

from symbiote_cli.core import sessions, signing
from symbiote_cli.core.clock import SystemClock
from symbiote_cli.core.kernel import sign_inputs
from symbiote_cli.core.models import ActionRequest, ProcessedEvent, Route, Session
from symbiote_cli.core.privacy import Sealer, generate_key, repo_key
from symbiote_cli.settings import Settings
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage
from symbiote_cli.worker import Worker, create_app

try:
    from .conftest import git_env
    from .fakegithub import FakeGitHub
    from .openapi import data_dir
except ImportError:
    from conftest import git_env  # type: ignore[no-redef]
    from fakegithub import FakeGitHub  # type: ignore[no-redef]
    from openapi import data_dir  # type: ignore[no-redef]

SECRET = "cbsecret-" + secrets.token_hex(16)
WORKER_TOKEN = "wtoken-" + secrets.token_hex(16)
ALICE_TOKEN = "ghp_canary_alice_" + secrets.token_hex(12)
BRANCH = "__STORAGE__"
VECTOR = data_dir() / "ubiquity-os" / "kernel-signature-vector.json"


# --------------------------------------------------------------------------- helpers


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def origin_tip(origin: Path) -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", f"refs/heads/{BRANCH}"],
        cwd=origin,
        env=git_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def on_branch(origin: Path, path: str) -> Any:
    done = subprocess.run(
        ["git", "show", f"{BRANCH}:{path}"], cwd=origin, env=git_env(), capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def sign(
    body: bytes, *, method: str = "POST", path: str, at: float | None = None, secret: str = SECRET
) -> dict[str, str]:
    """The signature headers of ``METHOD path`` with ``body`` (path and query as on the request line)."""
    return signing.sign(secret, body, int(time.time() if at is None else at), method=method, path=path)


BEARER = {"Authorization": f"Bearer {WORKER_TOKEN}"}


def comment_request(key: str, repo: str = "alice/demo", number: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "comment",
        "repo": repo,
        "issue_number": number,
        "body": f"hello {key}",
        "idempotency_key": key,
        **extra,
    }


class Api:
    """A TestClient that remembers every response text (no secret may ever appear in one)."""

    def __init__(self, client: TestClient, seen: list[str]) -> None:
        self.client = client
        self.seen = seen

    @property
    def worker(self) -> Worker:
        worker: Worker = self.client.app.state.worker  # type: ignore[attr-defined]
        return worker

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.client.request(method, url, **kwargs)
        self.seen.append(f"{dict(response.headers)} {response.text}")
        return response

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def signed_post(self, url: str, payload: Any, **sign_kwargs: Any) -> Any:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", **sign(body, path=url, **sign_kwargs)}
        return self.post(url, content=body, headers=headers)

    def signed_get(self, url: str, **sign_kwargs: Any) -> Any:
        return self.get(url, headers=sign(b"", method="GET", path=url, **sign_kwargs))


@dataclass
class World:
    fake: FakeGitHub
    fork: Path
    origin: Path
    settings: Settings
    seen: list[str] = field(default_factory=list)
    clients: list[TestClient] = field(default_factory=list)

    def make_settings(self, **overrides: Any) -> Settings:
        for name in ("storage_key", "callback_secret", "worker_token"):
            if isinstance(overrides.get(name), str):
                overrides[name] = SecretStr(overrides[name])
        return self.settings.model_copy(update=overrides)

    def app(self, settings: Settings | None = None, **kwargs: Any) -> Api:
        kwargs.setdefault("gc_interval", None)
        kwargs.setdefault("resume", False)
        kwargs.setdefault("owner_check_interval", 0.1)
        client = TestClient(create_app(settings or self.settings, **kwargs))
        client.__enter__()
        self.clients.append(client)
        return Api(client, self.seen)

    def close(self, api: Api) -> None:
        if api.client in self.clients:
            self.clients.remove(api.client)
            api.client.__exit__(None, None, None)

    def storage(self) -> Storage:
        """An independent reader/writer of the branch (another clone of the origin)."""
        path = self.fork.parent / f"clone-{secrets.token_hex(4)}"
        subprocess.run(["git", "init", "-q", "-b", "main", str(path)], env=git_env(), check=True)
        subprocess.run(["git", "-C", str(path), "remote", "add", "origin", str(self.origin)], env=git_env(), check=True)
        return Storage(path).open()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def world(fake_github: FakeGitHub, fork: Path, bare_origin: Path, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    caplog.set_level(logging.DEBUG, logger="symbiote")
    fake_github.poll_interval = 0  # the poller obeys X-Poll-Interval; keep the test fast
    # Local mode serves the owner of its GH_PAT only: here alice, whose token the worker holds.
    fake_github.add_user("alice", ALICE_TOKEN)
    for login in ("alice", "bob"):
        fake_github.add_user(login)
        fake_github.add_repo(f"{login}/demo")
        fake_github.add_issue(f"{login}/demo", 1, "First", author=login)
    assert fake_github.token is not None
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        gh_pat=ALICE_TOKEN,
        api_url=fake_github.url,
        storage_repo=fork,
        interval=0.05,
        heartbeat_interval=60.0,
        callback_secret=SECRET,
        worker_token=WORKER_TOKEN,
        seconds_between_requests=0,
        seconds_between_writes=0,
        http_retries=0,
    )
    w = World(fake_github, fork, bare_origin, settings)
    yield w
    for client in reversed(w.clients):
        client.__exit__(None, None, None)
    secrets_ = [fake_github.token, ALICE_TOKEN, SECRET, WORKER_TOKEN]
    for text in [*w.seen, caplog.text]:
        for secret in secrets_:
            assert secret not in text, "a secret leaked into a response or a log line"


def started(api: Api, user: str) -> str:
    response = api.post(f"/start/{user}", headers=BEARER)
    assert response.status_code == 202, response.text
    session_id: str = response.json()["session_id"]
    handle = api.worker.pollers.snapshot()[user]
    wait_for(lambda: handle.cycles >= 1, what=f"{user}'s first cycle")
    return session_id


def acked(fake: FakeGitHub, repo: str, number: int) -> int:
    return sum("Symbiote noticed" in c.body for c in fake.comments_on(repo, number))


# --------------------------------------------------------------------------- open endpoints


def test_health_and_manifest_need_no_auth(world: World) -> None:
    api = world.app()
    health = api.get("/health")
    assert health.status_code == 200
    # A stranger learns the status and nothing else: no version, branch, mode or session counts.
    assert health.json() == {"status": "ok"}
    assert api.get("/health", headers={"Authorization": "Bearer nope"}).json() == {"status": "ok"}
    body = api.get("/health", headers=BEARER).json()
    assert api.signed_get("/health").json() == body
    assert body["status"] == "ok"
    assert body["version"]
    assert body["mode"] == "local"
    assert body["storage"]["reachable"] is True
    assert body["sessions"] == {"active": 0, "local_pollers": 0}
    manifest = api.get("/manifest.json")
    assert manifest.status_code == 200
    assert manifest.json()["name"] == "Symbiote"
    assert "ubiquity:listeners" in manifest.json()


def test_health_counts_active_sessions(world: World) -> None:
    api = world.app()
    api.worker.health.cache_s = 0.0
    started(api, "alice")
    body = api.get("/health", headers=BEARER).json()
    assert body["sessions"] == {"active": 1, "local_pollers": 1}


def test_health_reports_unreachable_storage(world: World, tmp_path: Path) -> None:
    api = world.app(world.make_settings(storage_repo=tmp_path / "missing"))
    response = api.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded"}
    detailed = api.get("/health", headers=BEARER)
    assert detailed.status_code == 503
    assert detailed.json()["storage"]["reachable"] is False


# --------------------------------------------------------------------------- authentication


PROTECTED = [
    ("POST", "/start/alice"),
    ("GET", "/session/alice/status"),
    ("POST", "/state/s-1"),
    ("GET", "/state/s-1"),
    ("GET", "/storage/events/alice"),
    ("POST", "/registry/refresh"),
    ("POST", "/session/callback"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_other_endpoint_needs_auth(world: World, method: str, path: str) -> None:
    api = world.app()
    tip = origin_tip(world.origin)
    body = json.dumps({**comment_request("k"), "user": "alice"}).encode()
    for headers, code in (
        ({}, {"unauthorized", "missing_signature"}),
        ({"Authorization": "Bearer nope"}, {"bad_token", "missing_signature"}),
        ({"Authorization": f"Basic {WORKER_TOKEN}"}, {"bad_token", "missing_signature"}),
    ):
        response = api.request(method, path, content=body, headers=headers)
        assert response.status_code == 401, (path, headers, response.text)
        assert response.json()["error"] in code
        assert response.json()["message"]
    assert origin_tip(world.origin) == tip
    assert api.worker.pollers.snapshot() == {}


def test_bearer_and_signature_both_authenticate(world: World) -> None:
    api = world.app()
    assert api.get("/storage/events/alice", headers=BEARER).status_code == 200
    assert api.signed_get("/storage/events/alice").status_code == 200
    assert api.signed_get("/storage/events/alice?limit=5").status_code == 200


def test_a_signature_is_good_for_its_own_request_only(world: World) -> None:
    """The issue's attacks: an empty-body signature made for GET /session/alice/status is refused on
    POST /start/bob, and a captured POST /state/rp-1 body is refused on /state/rp-2: nothing written."""
    api = world.app()
    get = sign(b"", method="GET", path="/session/alice/status")
    assert api.get("/session/alice/status", headers=get).status_code == 404  # authentic: no session yet
    tip = origin_tip(world.origin)
    stolen = api.post("/start/bob", headers=get)
    assert (stolen.status_code, stolen.json()["error"]) == (401, "bad_signature")
    body = json.dumps({**comment_request("rp"), "user": "alice"}).encode()
    captured = sign(body, path="/state/rp-1")
    moved = api.post("/state/rp-2", content=body, headers={"Content-Type": "application/json", **captured})
    assert (moved.status_code, moved.json()["error"]) == (401, "bad_signature")
    query = sign(b"", method="GET", path="/storage/events/alice?limit=1")
    assert api.get("/storage/events/alice?limit=1000", headers=query).status_code == 401
    assert origin_tip(world.origin) == tip
    assert api.worker.pollers.snapshot() == {}


def test_a_replayed_signed_get_is_harmless(world: World) -> None:
    """No replay cache (no security decision in process memory): a read replayed in the window reads again."""
    api = world.app()
    headers = sign(b"", method="GET", path="/storage/events/alice")
    assert api.get("/storage/events/alice", headers=headers).status_code == 200
    assert api.get("/storage/events/alice", headers=headers).status_code == 200


def test_no_bearer_access_without_a_configured_token(world: World) -> None:
    api = world.app(world.make_settings(worker_token=None))
    response = api.get("/storage/events/alice", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("unsigned", 401, "unauthorized|missing_signature"),
        ("forged", 401, "bad_signature"),
        ("other_secret", 401, "bad_signature"),
        ("body_changed", 401, "bad_signature"),
        ("stale", 401, "stale_timestamp"),
        ("future", 401, "stale_timestamp"),
        ("no_timestamp", 401, "missing_timestamp"),
        ("bad_timestamp", 401, "bad_timestamp"),
        ("uppercase_hex", 401, "bad_signature"),
    ],
)
@pytest.mark.parametrize("path", ["/state/s-forged", "/session/callback"])
def test_bad_signatures_are_rejected_and_write_nothing(
    world: World, case: str, status: int, code: str, path: str
) -> None:
    api = world.app()
    if path == "/session/callback":
        session = sessions.new_session("alice", "actions", time.time(), deadline_s=None)
        payload: dict[str, Any] = {"kind": "session", **session.model_dump(mode="json")}
    else:
        payload = {**comment_request("forged"), "user": "alice"}
    body = json.dumps(payload).encode()
    now = time.time()
    headers = {"Content-Type": "application/json"}
    good = sign(body, path=path, at=now)
    if case == "forged":
        headers |= {**good, signing.SIGNATURE_HEADER: "sha256=" + "0" * 64}
    elif case == "other_secret":
        headers |= sign(body, path=path, at=now, secret="not-the-secret")
    elif case == "body_changed":
        headers |= sign(body + b" ", path=path, at=now)
    elif case == "stale":
        headers |= sign(body, path=path, at=now - 400)  # well past the 300 s window
    elif case == "future":
        headers |= sign(body, path=path, at=now + 400)
    elif case == "no_timestamp":
        headers[signing.SIGNATURE_HEADER] = good[signing.SIGNATURE_HEADER]
    elif case == "bad_timestamp":
        headers |= {**good, signing.TIMESTAMP_HEADER: "12.5"}
    elif case == "uppercase_hex":
        headers |= {
            **good,
            signing.SIGNATURE_HEADER: good[signing.SIGNATURE_HEADER].upper().replace("SHA256", "sha256"),
        }
    tip = origin_tip(world.origin)
    response = api.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] in code.split("|")
    assert origin_tip(world.origin) == tip
    assert api.get("/state/s-forged", headers=BEARER).status_code == 404


def test_replayed_state_request_changes_nothing_and_runs_once(world: World) -> None:
    api = world.app()
    started(api, "alice")
    body = json.dumps({**comment_request("replay"), "user": "alice"}).encode()
    headers = {"Content-Type": "application/json", **sign(body, path="/state/s-replay")}
    first = api.post("/state/s-replay", content=body, headers=headers)
    assert first.status_code == 202, first.text
    wait_for(lambda: api.get("/state/s-replay", headers=BEARER).json()["status"] == "done", what="drained")
    tip = origin_tip(world.origin)
    again = api.post("/state/s-replay", content=body, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert origin_tip(world.origin) == tip
    assert len(world.fake.comments_on("alice/demo", 1)) == 1


def test_callback_secret_not_configured_refuses_signed_requests(world: World) -> None:
    api = world.app(world.make_settings(callback_secret=None))
    body = b"{}"
    response = api.post("/session/callback", content=body, headers=sign(body, path="/session/callback"))
    assert response.status_code == 503
    assert response.json()["error"] == "not_configured"


def test_oversized_body_is_refused(world: World) -> None:
    api = world.app()
    body = b"{" + b" " * (3 * 1024 * 1024) + b"}"
    response = api.post("/state/s-big", content=body, headers=BEARER)
    assert response.status_code == 413


# --------------------------------------------------------------------------- sessions, local mode


def test_start_local_polls_and_acknowledges_once(world: World) -> None:
    api = world.app()
    session_id = started(api, "alice")
    stored = on_branch(world.origin, "users/alice/session.json")
    assert stored["id"] == session_id
    assert stored["status"] == "active"
    assert stored["mode"] == "local"
    world.fake.issue_opened("alice", "alice/demo", 2, "Bug", "It breaks")
    wait_for(lambda: acked(world.fake, "alice/demo", 2) == 1, what="the acknowledgment")
    time.sleep(0.3)  # more cycles: still one comment
    assert acked(world.fake, "alice/demo", 2) == 1
    status = api.get("/session/alice/status", headers=BEARER).json()
    assert status["session_id"] == session_id
    assert status["live"] is True
    assert status["poller"]["running"] is True


def test_start_twice_returns_the_live_session_and_one_poller(world: World) -> None:
    api = world.app()
    session_id = started(api, "alice")
    handle = api.worker.pollers.snapshot()["alice"]
    again = api.post("/start/alice", headers=BEARER)
    assert again.status_code == 202
    assert again.json()["session_id"] == session_id
    assert again.json()["existing"] is True
    assert api.worker.pollers.snapshot()["alice"] is handle
    alive = [t for t in threading.enumerate() if t.name == "symbiote-poll-alice"]
    assert len(alive) == 1
    # logins are case-insensitive: the same user, the same session
    other_case = api.post("/start/ALICE", headers=BEARER)
    assert other_case.status_code == 202
    assert other_case.json()["session_id"] == session_id
    assert api.get("/session/Alice/status", headers=BEARER).json()["session_id"] == session_id


def test_local_mode_serves_only_the_owner_of_its_token(world: World) -> None:
    """The issue's "one token for everyone": /start/bob used to poll bob's feed and comment with the
    worker's token. Local mode is single-tenant: bob is refused, nothing polls, nothing is written."""
    api = world.app()
    tip = origin_tip(world.origin)
    for path in ("/start/bob", "/start/BOB"):
        refused = api.post(path, headers=BEARER)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "not_served"
    state = api.signed_post("/state/s-bob", {**comment_request("b1", repo="bob/demo"), "user": "bob"})
    assert (state.status_code, state.json()["error"]) == (403, "not_served")
    assert origin_tip(world.origin) == tip
    assert api.worker.pollers.snapshot() == {}
    world.fake.issue_opened("bob", "bob/demo", 3, "B", "")
    started(api, "alice")
    time.sleep(0.3)
    assert acked(world.fake, "bob/demo", 3) == 0
    assert world.fake.comments_on("bob/demo", 1) == []


def test_start_rejects_bad_logins(world: World) -> None:
    api = world.app()
    for bad in ("-alice", "a" * 40, "al..ice", "al_ice"):
        response = api.post(f"/start/{bad}", headers=BEARER)
        assert response.status_code == 422, bad
        assert response.json()["error"] == "invalid_user"


def test_session_status(world: World) -> None:
    api = world.app()
    missing = api.get("/session/alice/status", headers=BEARER)
    assert missing.status_code == 404
    assert missing.json()["error"] == "no_session"
    assert api.get("/session/-x/status", headers=BEARER).status_code == 422


def test_silent_session_reads_as_expired(world: World) -> None:
    api = world.app()
    old = time.time() - 10_000
    silent = sessions.activate(sessions.new_session("alice", "actions", old, deadline_s=None), old)
    api.worker.storage.update(
        lambda _v: {layout.session_path("alice"): silent.model_dump(mode="json")}, "test: a silent session"
    )
    body = api.get("/session/alice/status", headers=BEARER).json()
    assert body["status"] == "expired"
    assert body["stored_status"] == "active"
    assert body["live"] is False
    # an expired session does not block a new one
    response = api.post("/start/alice", headers=BEARER)
    assert response.json()["existing"] is False
    assert response.json()["session_id"] != silent.id


def test_superseded_poller_exits_when_idle(world: World) -> None:
    """A newer session on the branch: the idle poller notices (worker check) and stops without
    touching the newer record."""
    api = world.app()
    mine = started(api, "alice")
    handle = api.worker.pollers.snapshot()["alice"]
    other = world.storage()
    newer = sessions.activate(sessions.new_session("alice", "local", time.time() + 1, deadline_s=None), time.time())
    other.update(lambda _v: {layout.session_path("alice"): newer.model_dump(mode="json")}, "test: newer session")
    wait_for(lambda: not handle.running, what="the superseded poller to exit")
    assert handle.superseded is True
    assert handle.exit_reason == "superseded by a newer session"
    stored = on_branch(world.origin, "users/alice/session.json")
    assert stored["id"] == newer.id != mine
    assert stored["status"] == "active"


def test_superseded_poller_exits_at_its_next_cycle_with_events(world: World) -> None:
    """Without the worker's check, the poll loop's own check (SupersededError) stops it before acting."""
    api = world.app(owner_check_interval=1e9)
    started(api, "alice")
    handle = api.worker.pollers.snapshot()["alice"]
    newer = sessions.activate(sessions.new_session("alice", "local", time.time() + 1, deadline_s=None), time.time())
    world.storage().update(lambda _v: {layout.session_path("alice"): newer.model_dump(mode="json")}, "test: newer")
    world.fake.issue_opened("alice", "alice/demo", 4, "Late", "")
    wait_for(lambda: not handle.running, what="the superseded poller to exit")
    assert handle.superseded is True
    assert acked(world.fake, "alice/demo", 4) == 0
    assert on_branch(world.origin, "users/alice/session.json")["id"] == newer.id


def test_restart_resumes_live_worker_sessions(world: World) -> None:
    first = world.app()
    old_id = started(first, "alice")
    world.fake.issue_opened("alice", "alice/demo", 5, "Before", "")
    wait_for(lambda: acked(world.fake, "alice/demo", 5) == 1)
    world.close(first)  # graceful stop: the session stays live so that a restart resumes it
    assert on_branch(world.origin, "users/alice/session.json")["status"] == "active"
    world.fake.issue_opened("alice", "alice/demo", 6, "While down", "")
    second = world.app(resume=True)
    wait_for(lambda: acked(world.fake, "alice/demo", 6) == 1, what="the resumed poller to catch up")
    stored = on_branch(world.origin, "users/alice/session.json")
    assert stored["id"] != old_id
    assert stored["status"] == "active"
    assert stored["run_id"] == second.worker.run_id
    assert acked(world.fake, "alice/demo", 5) == 1


def test_shutdown_can_end_sessions(world: World) -> None:
    api = world.app(end_sessions_on_shutdown=True)
    started(api, "alice")
    world.close(api)
    assert on_branch(world.origin, "users/alice/session.json")["status"] == "ended"


def test_resume_leaves_cli_sessions_alone(world: World) -> None:
    api = world.app()
    cli_session = sessions.activate(sessions.new_session("alice", "local", time.time(), deadline_s=None), time.time())
    api.worker.storage.update(
        lambda _v: {layout.session_path("alice"): cli_session.model_dump(mode="json")}, "test: a CLI session"
    )
    assert api.worker.sessions.resume() == []
    answer = api.post("/start/alice", headers=BEARER).json()
    assert answer["existing"] is True
    assert answer["session_id"] == cli_session.id
    assert api.worker.pollers.snapshot() == {}


# --------------------------------------------------------------------------- state requests


def test_state_request_is_queued_and_executed_once_by_the_session(world: World) -> None:
    api = world.app()
    session_id = started(api, "alice")
    response = api.signed_post("/state/s-queued", {**comment_request("q1"), "user": "alice"})
    assert response.status_code == 202, response.text
    assert response.json() == {"state_id": "s-queued", "user": "alice", "status": "queued", "session_id": session_id}
    done = wait_for(
        lambda: (r := api.get("/state/s-queued", headers=BEARER).json())["status"] == "done" and r,
        what="the session to drain its inbox",
    )
    assert done["user"] == "alice"
    assert done["result"]["status"] == "done"
    assert done["result"]["url"]
    assert on_branch(world.origin, "users/alice/inbox/s-queued.json") is None
    assert on_branch(world.origin, "outbox/s-queued.json")["user"] == "alice"
    assert len(world.fake.comments_on("alice/demo", 1)) == 1
    # the same state id again (newly signed): answered from the outbox, not executed twice
    again = api.signed_post("/state/s-queued", {**comment_request("q1"), "user": "alice"}, at=time.time() + 2)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    time.sleep(0.2)
    assert len(world.fake.comments_on("alice/demo", 1)) == 1
    # and another user cannot claim it (here: is not even served)
    conflict = api.signed_post("/state/s-queued", {**comment_request("q1", repo="bob/demo"), "user": "bob"})
    assert conflict.status_code == 403
    assert conflict.json()["error"] == "not_served"


def test_state_request_without_live_session_runs_directly_in_local_mode(world: World) -> None:
    api = world.app()
    response = api.post("/state/s-direct", json={**comment_request("d1"), "user": "alice"}, headers=BEARER)
    assert response.status_code == 202, response.text
    assert response.json()["status"] in {"running", "done"}
    done = wait_for(lambda: (r := api.get("/state/s-direct", headers=BEARER).json())["status"] == "done" and r)
    assert done["user"] == "alice"
    assert len(world.fake.comments_on("alice/demo", 1)) == 1
    assert on_branch(world.origin, "users/alice/inbox/s-direct.json") is None


def test_state_request_user_defaults_to_symbiote_user(world: World) -> None:
    api = world.app(world.make_settings(user="alice"))
    response = api.post("/state/s-default", json=comment_request("u1"), headers=BEARER)
    assert response.status_code == 202
    assert response.json()["user"] == "alice"


def test_failed_action_is_reported_failed(world: World) -> None:
    api = world.app()
    body = {**comment_request("f1", repo="alice/nothing-here"), "user": "alice"}
    assert api.post("/state/s-fail", json=body, headers=BEARER).status_code == 202
    failed = wait_for(lambda: (r := api.get("/state/s-fail", headers=BEARER).json())["status"] == "failed" and r)
    assert failed["result"]["status"] == "failed"


@pytest.mark.parametrize(
    ("state_id", "payload", "code"),
    [
        ("bad id", {**comment_request("x"), "user": "alice"}, "invalid_state_id"),
        (".hidden", {**comment_request("x"), "user": "alice"}, "invalid_state_id"),
        ("x" * 129, {**comment_request("x"), "user": "alice"}, "invalid_state_id"),
        ("s-1", {"kind": "comment", "user": "alice"}, "invalid_request"),
        ("s-1", {**comment_request("x"), "user": "alice", "extra": 1}, "invalid_request"),
        ("s-1", {**comment_request("x"), "user": "-bad-"}, "invalid_user"),
        ("s-1", comment_request("x"), "missing_user"),
        (
            "s-1",
            {"kind": "comment", "repo": "alice/demo", "idempotency_key": "k", "user": "alice"},
            "incomplete_request",
        ),
        ("s-1", {**comment_request("x"), "repo": "../etc", "user": "alice"}, "invalid_request"),
        ("s-1", {**comment_request("bad key!"), "user": "alice"}, "invalid_request"),
    ],
)
def test_invalid_state_requests_are_422_and_write_nothing(
    world: World, state_id: str, payload: dict[str, Any], code: str
) -> None:
    api = world.app()
    tip = origin_tip(world.origin)

    response = api.signed_post(f"/state/{quote(state_id, safe='')}", payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == code
    assert origin_tip(world.origin) == tip


def test_non_json_state_body(world: World) -> None:
    api = world.app()
    for body in (b"not json", b"[1, 2]", b"\xff\xfe", b""):
        response = api.post("/state/s-1", content=body, headers={**BEARER, "Content-Type": "application/json"})
        assert response.status_code == 422, body
        assert response.json()["error"] == "invalid_json"
    # unauthenticated garbage is refused before it is parsed
    assert api.post("/state/s-1", content=b"not json").status_code == 401


def test_private_request_is_sealed_in_the_inbox_with_a_storage_key(world: World) -> None:
    world.fake.add_repo("alice/secret", private=True, collaborators=("octo",))
    world.fake.add_issue("alice/secret", 1, "Hidden", author="alice")
    api = world.app(world.make_settings(storage_key=generate_key()), owner_check_interval=0.1)
    started(api, "alice")
    handle = api.worker.pollers.snapshot()["alice"]
    assert handle.poller is not None
    handle.poller.session = None  # stop it as a worker shutdown does: the session stays live
    handle.stop.set()  # and the request stays in the inbox long enough to look at it
    wait_for(lambda: not handle.running)
    response = api.signed_post(
        "/state/s-private", {**comment_request("p1", repo="alice/secret"), "private": True, "user": "alice"}
    )
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    raw = subprocess.run(
        ["git", "show", f"{BRANCH}:users/alice/inbox/s-private.json"],
        cwd=world.origin,
        env=git_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "alice/secret" not in raw
    assert "sealed" in json.loads(raw)
    assert api.get("/state/s-private", headers=BEARER).json()["status"] == "queued"


def test_private_request_without_key_runs_directly_and_is_redacted(world: World) -> None:
    world.fake.add_repo("alice/secret", private=True, collaborators=("octo",))
    world.fake.add_issue("alice/secret", 1, "Hidden", author="alice")
    api = world.app()
    started(api, "alice")
    body = {**comment_request("p2", repo="alice/secret"), "private": True, "user": "alice"}
    response = api.post("/state/s-priv2", json=body, headers=BEARER)
    assert response.status_code == 202
    assert response.json()["status"] == "running"  # not queued: it could not be sealed
    done = wait_for(lambda: (r := api.get("/state/s-priv2", headers=BEARER).json())["status"] == "done" and r)
    assert done["result"]["repo"] == repo_key("alice/secret")
    assert "alice/secret" not in json.dumps(on_branch(world.origin, "outbox/s-priv2.json"))


# --------------------------------------------------------------------------- the kernel's form


@pytest.fixture
def vector() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTOR.read_text(encoding="utf-8"))
    return data


VECTOR_WORKER_URL = "https://symbiote.example-worker.dev"  # the ref of the vector's worker form


def kernel_world(world: World, vector: dict[str, Any], **overrides: Any) -> Api:
    """The vector's request is alice's comment on test-org/test-repo, for the plugin at VECTOR_WORKER_URL:
    in scope for alice's worker once she allows test-org (SYMBIOTE_KERNEL_SCOPE)."""
    world.fake.add_repo("test-org/test-repo")
    world.fake.add_issue("test-org/test-repo", 7, "Kernel issue", author="alice")
    settings = world.make_settings(kernel_public_key=vector["public_key_pem"], kernel_scope=["test-org"], **overrides)
    return world.app(settings, public_url=VECTOR_WORKER_URL)


@pytest.mark.parametrize("path", ["/", "/state/5d41c0aa-2b7e-4f6e-8c9a-3a1b2c4d5e6f"])
def test_kernel_form_is_verified_and_acted_on_once(world: World, vector: dict[str, Any], path: str) -> None:
    api = kernel_world(world, vector)
    inputs = dict(vector["legacy_worker_inputs"])
    headers = {"X-Hub-Signature-256": f"sha256={inputs['signature']}"}
    response = api.post(path, json=inputs, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["stateId"] == inputs["stateId"]
    assert response.json()["output"]["status"] == "done"
    assert len(world.fake.comments_on("test-org/test-repo", 7)) == 1
    again = api.post(path, json=inputs)
    assert again.status_code == 200
    assert again.json()["output"]["status"] == "already_done"
    assert len(world.fake.comments_on("test-org/test-repo", 7)) == 1
    state_id = inputs["stateId"]
    assert api.get(f"/state/{state_id}", headers=BEARER).json()["status"] == "done"


def test_kernel_form_with_attestation_token(world: World, vector: dict[str, Any]) -> None:
    class InsideTheTokensHour(SystemClock):
        def now(self) -> float:
            return 1_767_225_600.0 + 600

    world.fake.add_repo("test-org/test-repo")
    world.fake.add_issue("test-org/test-repo", 7, "Kernel issue", author="alice")
    api = world.app(
        world.make_settings(kernel_public_key=vector["public_key_pem"], kernel_scope=["test-org"]),
        clock=InsideTheTokensHour(),
        public_url="https://my-plugin.example-worker.dev",
    )
    assert api.post("/", json=vector["worker_inputs"]).status_code == 200


@pytest.mark.parametrize("variant", ["tampered", "resigned_by_other", "header_mismatch", "missing", "path_mismatch"])
def test_kernel_form_rejections_are_400(world: World, vector: dict[str, Any], variant: str) -> None:
    api = kernel_world(world, vector)
    inputs = dict(vector["legacy_worker_inputs"])
    headers: dict[str, str] = {}
    path = "/"
    if variant == "tampered":
        inputs["eventName"] = "issues.opened"
    elif variant == "resigned_by_other":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        inputs["signature"] = sign_inputs(inputs, pem)
    elif variant == "header_mismatch":
        headers["X-Hub-Signature-256"] = "sha256=AAAA"
    elif variant == "missing":
        del inputs["authToken"]
    elif variant == "path_mismatch":
        path = "/state/another-state"
    tip = origin_tip(world.origin)
    response = api.post(path, json=inputs, headers=headers)
    assert response.status_code == 400, response.text
    assert origin_tip(world.origin) == tip
    assert world.fake.comments_on("test-org/test-repo", 7) == []
    assert vector["legacy_worker_inputs"]["authToken"] not in response.text


def test_root_refuses_symbiote_form(world: World) -> None:
    api = world.app()
    response = api.post("/", json={**comment_request("x"), "user": "alice"}, headers=BEARER)
    assert response.status_code == 400


# --------------------------------------------------------------------------- actions mode


@pytest.fixture
def actions(world: World) -> Api:
    """Actions mode the older way (no GitHub App): SYMBIOTE_REPO is alice's fork, dispatched with her token."""
    world.fake.add_repo("alice/fork", default_branch="main")
    world.fake.add_workflow(
        "alice/fork", "symbiote-main.yml", inputs=["user", "duration", "session_id", "callback_url"]
    )
    world.fake.add_workflow(
        "alice/fork", "symbiote-auth.yml", inputs=["state_id", "worker_url", "stateId", "eventName"]
    )
    return world.app(world.make_settings(repo="alice/fork"))


def report(session: Session) -> dict[str, Any]:
    """What ``runner.session_reporter`` posts."""
    return {"kind": "session", **session.model_dump(mode="json")}


def test_actions_start_dispatches_and_records_starting(world: World, actions: Api) -> None:
    response = actions.post("/start/alice", headers=BEARER)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "starting"
    assert answer["mode"] == "actions"
    [dispatch] = world.fake.workflow_dispatches
    assert dispatch.workflow == "symbiote-main.yml"
    assert dispatch.ref == "main"
    assert dispatch.inputs == {
        "user": "alice",
        "session_id": answer["session_id"],
        "callback_url": "http://testserver/session/callback",
    }
    assert on_branch(world.origin, "users/alice/session.json")["status"] == "starting"
    again = actions.post("/start/alice", headers=BEARER)
    assert again.json()["session_id"] == answer["session_id"]
    assert len(world.fake.workflow_dispatches) == 1
    assert actions.worker.pollers.snapshot() == {}


def test_actions_callback_url_uses_the_public_url(world: World) -> None:
    world.fake.add_repo("alice/fork")
    world.fake.add_workflow("alice/fork", "symbiote-main.yml")
    api = world.app(world.make_settings(repo="alice/fork"), public_url="https://worker.example/")
    api.post("/start/alice", headers=BEARER)
    assert world.fake.workflow_dispatches[0].inputs["callback_url"] == "https://worker.example/session/callback"


def test_actions_dispatch_failure_marks_the_session_failed(world: World, actions: Api) -> None:
    world.fake.fail("POST", r"/dispatches$", status=422, times=1)
    world.fake.spec_violations.clear()
    response = actions.post("/start/alice", headers=BEARER)
    assert response.status_code == 502
    assert response.json()["error"] == "dispatch_failed"
    assert on_branch(world.origin, "users/alice/session.json")["status"] == "failed"
    world.fake.spec_violations.clear()


def test_callbacks_register_heartbeat_and_end(world: World, actions: Api) -> None:
    session_id = actions.post("/start/alice", headers=BEARER).json()["session_id"]
    now = time.time()
    run = sessions.activate(
        sessions.new_session("alice", "actions", now, deadline_s=None, session_id=session_id),
        now,
        run_id="4242",
        run_url="https://github.com/alice/fork/actions/runs/4242",
    )
    active = actions.signed_post("/session/callback", report(run))
    assert active.status_code == 200, active.text
    assert active.json()["session"]["status"] == "active"
    stored = on_branch(world.origin, "users/alice/session.json")
    assert (stored["status"], stored["run_id"]) == ("active", "4242")
    beat = sessions.heartbeat(run, now + 1, counts={"events": 3, "cycles": 2})
    assert actions.signed_post("/session/callback", report(beat)).status_code == 200
    assert on_branch(world.origin, "users/alice/session.json")["counts"] == {"events": 3, "cycles": 2}
    status = actions.get("/session/alice/status", headers=BEARER).json()
    assert status["live"] is True
    ended = sessions.end(beat, now + 2, counts={"events": 4})
    response = actions.signed_post("/session/callback", report(ended))
    assert response.status_code == 200
    assert response.json()["live"] is False
    stored = on_branch(world.origin, "users/alice/session.json")
    assert stored["status"] == "ended"
    assert stored["counts"]["events"] == 4
    # an ended session cannot come back
    tip = origin_tip(world.origin)
    late = actions.signed_post("/session/callback", report(beat), at=time.time() + 2)
    assert late.status_code == 409
    assert late.json()["error"] == "not_live"
    assert origin_tip(world.origin) == tip


def test_callback_for_unknown_or_mismatched_session(world: World, actions: Api) -> None:
    session_id = actions.post("/start/alice", headers=BEARER).json()["session_id"]
    now = time.time()
    tip = origin_tip(world.origin)
    stranger = sessions.new_session("alice", "actions", now, deadline_s=None)
    response = actions.signed_post("/session/callback", report(sessions.activate(stranger, now)))
    assert response.status_code == 409
    assert response.json()["error"] == "superseded"
    nobody = sessions.new_session("bob", "actions", now, deadline_s=None, session_id=session_id)
    response = actions.signed_post("/session/callback", report(sessions.activate(nobody, now)))
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_session"
    other_run = sessions.new_session("alice", "actions", now, deadline_s=None, session_id=session_id)
    assert (
        actions.signed_post("/session/callback", report(sessions.activate(other_run, now, run_id="1"))).status_code
        == 200
    )
    clash = actions.signed_post("/session/callback", report(sessions.activate(other_run, now, run_id="2")))
    assert clash.status_code == 409
    assert clash.json()["error"] == "other_run"
    assert on_branch(world.origin, "users/alice/session.json")["run_id"] == "1"
    assert tip != origin_tip(world.origin)  # only the accepted report wrote


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "nope"},
        {"kind": "session"},
        {"kind": "session", "id": "x", "user": "-bad", "started_at": 1, "heartbeat_at": 1},
        {"kind": "session", "id": "x", "user": "alice", "started_at": 1, "heartbeat_at": 1, "status": "expired"},
        {"kind": "state_result"},
        {"kind": "state_result", "state_id": "../x"},
        [1, 2],
    ],
)
def test_malformed_callbacks_are_422(world: World, actions: Api, payload: Any) -> None:
    tip = origin_tip(world.origin)
    response = actions.signed_post("/session/callback", payload)
    assert response.status_code == 422, response.text
    assert origin_tip(world.origin) == tip


def test_actions_state_request_dispatches_auth_with_no_body_in_its_inputs(world: World, actions: Api) -> None:
    body = {**comment_request("a1"), "user": "alice"}
    response = actions.signed_post("/state/s-auth", body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "dispatched"
    [dispatch] = world.fake.workflow_dispatches
    assert dispatch.workflow == "symbiote-auth.yml"
    # Only the state id and the worker's URL: the request waits on the worker's branch.
    assert dispatch.inputs == {"state_id": "s-auth", "worker_url": "http://testserver"}
    assert "hello a1" not in json.dumps(dispatch.inputs)
    assert actions.get("/state/s-auth", headers=BEARER).json()["status"] == "dispatched"
    fetched = actions.get("/state/s-auth/request", headers=BEARER).json()
    assert fetched["kind"] == "action"
    assert ActionRequest.model_validate(fetched["request"]).idempotency_key == "a1"
    # the run reports its result: kept in the worker's outbox, the request dropped
    record = {"user": "alice", "status": "done", "result": {"status": "done"}, "finished_at": time.time()}
    result = actions.signed_post("/session/callback", {"kind": "state_result", "state_id": "s-auth", **record})
    assert result.status_code == 200, result.text
    assert actions.get("/state/s-auth", headers=BEARER).json()["status"] == "done"
    assert actions.get("/state/s-auth/request", headers=BEARER).status_code == 404
    # a private repo's request is kept only sealed: without SYMBIOTE_STORAGE_KEY it is refused
    private = actions.signed_post("/state/s-priv", {**body, "private": True})
    assert private.status_code == 409
    assert private.json()["error"] == "needs_storage_key"
    assert len(world.fake.workflow_dispatches) == 1


def test_actions_state_request_with_a_live_session_is_dispatched_too(world: World, actions: Api) -> None:
    """The fork's run cannot drain the worker's inbox: every request goes to symbiote-auth.yml."""
    actions.post("/start/alice", headers=BEARER)
    response = actions.signed_post("/state/s-q", {**comment_request("q"), "user": "alice"})
    assert response.json()["status"] == "dispatched"
    assert on_branch(world.origin, "users/alice/inbox/s-q.json") is None
    assert [d.workflow for d in world.fake.workflow_dispatches] == ["symbiote-main.yml", "symbiote-auth.yml"]


# --------------------------------------------------------------------------- storage views and cleanup


def test_storage_events_paging_and_privacy(world: World) -> None:
    api = world.app()
    started(api, "alice")
    world.fake.issue_opened("alice", "alice/demo", 10, "One", "")
    world.fake.issue_opened("alice", "alice/demo", 11, "Two", "")
    wait_for(lambda: api.get("/storage/events/alice", headers=BEARER).json()["count"] == 2)
    events = api.get("/storage/events/alice", headers=BEARER).json()["events"]
    assert [e["processed_at"] for e in events] == sorted((e["processed_at"] for e in events), reverse=True)
    assert api.get("/storage/events/alice?limit=1", headers=BEARER).json()["count"] == 1
    future = time.time() + 3600
    assert api.get(f"/storage/events/alice?since={future}", headers=BEARER).json()["count"] == 0
    for bad in ("limit=0", "limit=1001", "limit=x", "since=-1", "since=nan"):
        response = api.get(f"/storage/events/alice?{bad}", headers=BEARER)
        assert response.status_code == 422, bad
        assert response.json()["error"] == "invalid_request"
    # a private record stays redacted without the key, is readable with it

    key = generate_key()
    record = ProcessedEvent(
        event_id="99",
        type="IssuesEvent",
        repo="alice/secret",
        route=Route.USER,
        reason="x",
        processed_at=time.time(),
        private=True,
    )
    api.worker.storage.update(lambda v: layout.merge_events(v, "alice", [record], Sealer([key])), "test: private")
    redacted = [e for e in api.get("/storage/events/alice", headers=BEARER).json()["events"] if e["event_id"] == "99"]
    assert redacted[0]["repo"] == repo_key("alice/secret", Sealer([key]).names)  # keyed: the record was sealed
    world.close(api)  # one Storage per clone at a time (see the worker's notes on git's ref locks)
    keyed = world.app(world.make_settings(storage_key=key))
    clear = [e for e in keyed.get("/storage/events/alice", headers=BEARER).json()["events"] if e["event_id"] == "99"]
    assert clear[0]["repo"] == "alice/secret"


def test_registry_refresh_stores_kernel_repos(world: World) -> None:
    world.fake.add_repo("alice/kernelled", files={".github/.ubiquity-os.config.yml": "plugins: []\n"})
    api = world.app()
    started(api, "alice")
    world.fake.issue_opened("alice", "alice/kernelled", 1, "K", "")
    world.fake.issue_opened("alice", "alice/demo", 12, "D", "")
    wait_for(lambda: api.get("/storage/events/alice", headers=BEARER).json()["count"] == 2)
    response = api.post("/registry/refresh", headers=BEARER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kernel"] == ["alice/kernelled"]
    assert body["checked"] == 2
    stored = on_branch(world.origin, "registry.json")
    assert stored["repos"]["alice/kernelled"]["kernel"] is True
    assert stored["repos"]["alice/demo"]["kernel"] is False


def test_gc_prunes_old_records_and_expires_silent_sessions(world: World) -> None:
    api = world.app()
    now = time.time()
    old = now - 40 * 86400
    ended = sessions.end(sessions.new_session("alice", "local", old, deadline_s=None), old + 10)
    silent = sessions.activate(sessions.new_session("bob", "actions", now - 3600, deadline_s=None), now - 3600)
    day_old = layout.events_path("alice", layout.day_of(old))
    day_new = layout.events_path("alice", layout.day_of(now))
    api.worker.storage.update(
        lambda _v: {
            layout.session_path("alice"): ended.model_dump(mode="json"),
            layout.session_path("bob"): silent.model_dump(mode="json"),
            day_old: layout.day_json({}),
            day_new: layout.day_json({}),
        },
        "test: old records",
    )
    removed = api.worker.maintenance.gc()
    assert set(removed) == {layout.session_path("alice"), day_old}
    assert on_branch(world.origin, layout.session_path("alice")) is None
    assert on_branch(world.origin, day_old) is None
    assert on_branch(world.origin, day_new) is not None
    assert on_branch(world.origin, layout.session_path("bob"))["status"] == "expired"
    tip = origin_tip(world.origin)
    assert api.worker.maintenance.gc() == []
    assert origin_tip(world.origin) == tip  # nothing left to do: no commit


def test_background_gc_runs_periodically(world: World) -> None:
    api = world.app(gc_interval=0.05)
    wait_for(lambda: api.worker.maintenance.last_gc is not None, what="a background gc")


# --------------------------------------------------------------------------- generated input: never a 5xx


def test_docs_are_off_unless_asked_for(world: World) -> None:
    api = world.app()
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert api.get(path).status_code == 404, path
        assert api.get(path, headers=BEARER).status_code == 404, path
    shown = world.app(world.make_settings(worker_docs=True))
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert shown.get(path).status_code == 200, path


def test_openapi_describes_every_endpoint(world: World) -> None:
    api = world.app(docs=True)
    schema = api.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert paths == {
        "/health",
        "/manifest.json",
        "/start/{userId}",
        "/session/callback",
        "/session/{userId}/status",
        "/state/{stateId}",
        "/state/{stateId}/request",
        "/",
        "/storage/events/{userId}",
        "/registry/refresh",
    }
    assert {"StateRequest", "KernelInputs", "SessionReport"} <= set(schema["components"]["schemas"])


def _fuzz(operation: Any, mode: Any, client: TestClient, seen: dict[str, set[int]], texts: list[str]) -> None:
    """Each generated case three ways: unauthenticated, with the bearer token, and HMAC-signed."""
    label = operation.label

    @given(case=operation.as_strategy(generation_mode=mode))
    @hsettings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        responses = [case.call(headers=headers) for headers in ({}, BEARER)]
        if case.body is NOT_SET:
            body = b""
        elif isinstance(case.body, bytes):
            body = case.body
        else:
            body = json.dumps(case.body, default=str).encode()
        url = httpx.URL(case.formatted_path, params=case.query or None)
        responses.append(
            client.request(
                case.method,
                str(url),
                content=body,
                headers={
                    "Content-Type": "application/json",
                    **sign(body, method=case.method, path=url.raw_path.decode("ascii")),
                },
            )
        )
        for response in responses:
            seen.setdefault(label, set()).add(response.status_code)
            texts.append(response.text)
            assert response.status_code < 500, (label, response.status_code, response.text)

    check()


def test_schemathesis_finds_no_server_error(world: World) -> None:
    """Positive and negative cases for every operation, unauthenticated and with the bearer token."""
    app = create_app(world.make_settings(interval=30.0), gc_interval=None, resume=False, docs=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    client = TestClient(app)
    seen: dict[str, set[int]] = {}
    started_at = time.monotonic()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            _fuzz(operation, GenerationMode.POSITIVE, client, seen, world.seen)
            with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: no parameters, no body
                _fuzz(operation, GenerationMode.NEGATIVE, client, seen, world.seen)
    finally:
        app.state.worker.shutdown(timeout=5)
    assert time.monotonic() - started_at < 60
    assert {code for codes in seen.values() for code in codes} >= {200, 401, 403, 422}


_kinds = st.sampled_from(["comment", "reaction", "label", "dispatch", "kernel", "none", "bogus"])
_maybe = st.one_of(st.none(), st.integers(min_value=-2, max_value=3))
_keys = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)
_complete = st.fixed_dictionaries(
    {
        "kind": st.just("comment"),
        "repo": st.sampled_from(["alice/demo", "bob/demo", "alice/gone"]),
        "issue_number": st.integers(min_value=1, max_value=2),
        "body": st.text(min_size=1, max_size=30),
        "idempotency_key": _keys,
        "user": st.sampled_from(["alice", "bob"]),
    }
)
_random = st.fixed_dictionaries(
    {"kind": _kinds, "repo": st.sampled_from(["alice/demo", "alice/gone", "bad repo", ""])},
    optional={
        "idempotency_key": st.text(min_size=0, max_size=8),
        "issue_number": _maybe,
        "comment_id": _maybe,
        "body": st.text(max_size=20),
        "reaction": st.sampled_from(["+1", "heart", "nope"]),
        "labels": st.lists(st.text(max_size=5), max_size=3),
        "workflow": st.text(max_size=10),
        "private": st.booleans(),
        "user": st.sampled_from(["alice", "bob", "-x", "ALICE"]),
        "auth": st.sampled_from(["user", "app", "root"]),
    },
)


def test_signed_state_requests_never_5xx(world: World) -> None:
    """Signed, hypothesis-generated action requests reach the deep paths (queue, direct execution)."""
    api = world.app()
    started(api, "alice")
    counter = iter(range(10_000))
    statuses: set[int] = set()

    @given(payload=st.one_of(_complete, _random))
    @hsettings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(payload: dict[str, Any]) -> None:
        response = api.signed_post(f"/state/gen-{next(counter)}", payload)
        statuses.add(response.status_code)
        assert response.status_code < 500, response.text

    check()
    assert statuses <= {200, 202, 403, 409, 422}
    assert 202 in statuses
    assert 422 in statuses


def test_an_expired_health_cache_is_recomputed_by_one_caller_while_the_others_get_the_last_answer() -> None:
    """``/health`` under a load balancer: when the 2 s cache expires, one request runs git, not all of them."""
    from types import SimpleNamespace  # noqa: PLC0415 - local to this test

    from symbiote_cli.worker.services.health import HealthService  # noqa: PLC0415 - local to this test

    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    class SlowStorage:
        def reachable(self) -> bool:
            calls.append(1)
            if len(calls) > 1:
                started.set()
                release.wait(10)
            return True

        def list_paths(self, prefix: str = "") -> list[str]:
            return []

    storage = SlowStorage()

    def refresh_at_most(every: float) -> SlowStorage:
        del every
        return storage

    def live(session: object) -> bool:
        del session
        return False

    ctx = SimpleNamespace(
        refresh_at_most=refresh_at_most, live=live, mode="local", settings=SimpleNamespace(storage_branch="__STORAGE__")
    )
    pollers = SimpleNamespace(running=list)
    health = HealthService(ctx, pollers)  # type: ignore[arg-type]
    assert health.check().status.value == "ok"  # the first answer, cached
    health.cache_s = 0.0  # expired from now on
    answers: list[str] = []
    threads = [threading.Thread(target=lambda: answers.append(health.check().status.value)) for _ in range(20)]
    threads[0].start()
    assert started.wait(10)
    for thread in threads[1:]:
        thread.start()
    for thread in threads[1:]:
        thread.join(10)
    assert len(answers) == 19  # answered from the last result while one caller recomputes
    release.set()
    threads[0].join(10)
    assert answers == ["ok"] * 20
    assert len(calls) == 2  # the first check and one recomputation, not 20
