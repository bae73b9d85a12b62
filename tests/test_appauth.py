"""GitHub App credentials (``appauth.py``) and the kernel registry (``registry.py``) against the fake.

A fresh RSA key is the app's key (``fake.set_app``); the fake checks every app JWT (RS256, ``iss``,
``iat``/``exp``) and issues installation tokens that expire after an hour (``expires_at``). The
tokens' length is never assumed: the fake is made to issue much longer and much shorter ones.
Time for PyGithub's refresh decision and for the fake is shifted together (``Shift``), the only
way to cross an hour in a test without waiting one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import github.Auth
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from fakegithub import FakeGitHub

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import AuthError, ConfigError
from symbiote_cli.core.models import ActionKind, ActionRequest, AuthMode, Event
from symbiote_cli.flows.execute import Executor
from symbiote_cli.github.appauth import AppCredentials, load_private_key
from symbiote_cli.github.client import GitHubClient
from symbiote_cli.github.registry import CONFIG_PATH, KernelRegistry

APP_ID = 424242
SLUG = "symbiote-app"
BOT = f"{SLUG}[bot]"
CONFIG = {CONFIG_PATH: "plugins: []\n"}
CLI = [sys.executable, "-m", "symbiote_cli"]


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.fixture(scope="module")
def app_key() -> tuple[str, str]:
    return _rsa_pair()


@pytest.fixture
def fake(fake_github: FakeGitHub, app_key: tuple[str, str]) -> FakeGitHub:
    """acme/served: app installed + kernel config; acme/bare: app installed, no config;
    acme/plain: config but no app; acme/hush: private, app installed."""
    fake_github.set_app(APP_ID, app_key[1], slug=SLUG)
    fake_github.add_repo("acme/served", kernel_installed=True, files=CONFIG)
    fake_github.add_repo("acme/bare", kernel_installed=True)
    fake_github.add_repo("acme/plain", files=CONFIG)
    fake_github.add_repo("acme/hush", private=True, kernel_installed=True, collaborators=("octo",))
    for repo in ("acme/served", "acme/bare", "acme/plain", "acme/hush"):
        fake_github.add_issue(repo, 1, "an issue")
    return fake_github


@pytest.fixture
def creds(fake: FakeGitHub, app_key: tuple[str, str]) -> AppCredentials:
    return AppCredentials(str(APP_ID), app_key[0], fake.url)


def user_client(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(fake.token or "", fake.url, seconds_between_requests=0, seconds_between_writes=0)


def event_on(fake: FakeGitHub, repo: str, number: int = 1) -> Event:
    return Event.model_validate(fake.issue_comment("octo", repo, number, "hello"))


def comment(repo: str, key: str, auth: AuthMode, *, private: bool = False) -> ActionRequest:
    return ActionRequest(
        kind=ActionKind.COMMENT, repo=repo, issue_number=1, body="hi", idempotency_key=key, auth=auth, private=private
    )


def authorization(request: Any) -> tuple[str, str]:
    scheme, _, credential = str(request.headers.get("authorization", "")).partition(" ")
    return scheme.lower(), credential


# ----------------------------------------------------------------------------- the private key


def test_private_key_from_text_escaped_text_or_a_file(app_key: tuple[str, str], tmp_path: Path) -> None:
    private = app_key[0]
    path = tmp_path / "app.pem"
    path.write_text(private, encoding="utf-8")
    one_line = private.strip().replace("\n", "\\n")  # how a key often lands in a one-line secret
    for given in (private, one_line, one_line + "\\n", str(path), f"  {path}\n"):
        loaded = load_private_key(given)
        assert loaded.strip() == private.strip()
        load_pem_private_key(loaded.encode(), password=None)
    for bad in ("", "not a key", str(tmp_path / "missing.pem"), "-----BEGIN PUBLIC KEY-----\nx\n"):
        with pytest.raises(ConfigError, match="SYMBIOTE_APP_PRIVATE_KEY") as info:
            load_private_key(bad)
        assert "PRIVATE KEY-----\n" not in str(info.value)


# ----------------------------------------------------------------------------- installation lookups


def test_installation_lookup_uses_an_app_jwt_and_is_cached(fake: FakeGitHub, creds: AppCredentials) -> None:
    installation = creds.installation_id("acme/served")
    assert installation == fake.installations["acme"].id
    [lookup] = fake.requests_to("GET", r"^/repos/acme/served/installation$")
    scheme, token = authorization(lookup)
    assert scheme == "bearer"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == str(APP_ID)
    assert claims["exp"] - claims["iat"] <= 660  # GitHub accepts at most 10 minutes (plus skew)
    assert lookup.status == 200
    # Cached for the run: asking again costs no request.
    assert creds.installation_id("acme/served") == installation
    assert creds.is_installed("acme/served") is True
    assert len(fake.requests_to("GET", r"/installation$")) == 1
    # Not installed: a 404, which is an answer ("no"), not a failure.
    assert creds.is_installed("acme/plain") is False
    assert creds.client_for("acme/plain") is None
    assert repr(creds) == f"AppCredentials(app_id='{APP_ID}')"


def test_registry_trusts_the_installation_lookup(fake: FakeGitHub, creds: AppCredentials) -> None:
    registry = KernelRegistry(user_client(fake), FakeClock(1000.0), installation_lookup=creds.is_installed)
    registry.resolve([event_on(fake, r) for r in ("acme/served", "acme/bare", "acme/plain")])
    entries = {e.repo: e for e in registry.take_changes().values()}
    # Installed and configured: the kernel acts there.
    assert entries["acme/served"].kernel is True
    assert entries["acme/served"].source == f"{CONFIG_PATH} exists"
    # The kernel needs both its app and a config (the UbiquityOS kernel's README).
    assert entries["acme/bare"].kernel is False
    assert entries["acme/bare"].source == "no kernel config found"
    # Not installed: authoritative, so the config file is not even probed.
    assert entries["acme/plain"].kernel is False
    assert entries["acme/plain"].source == "app not installed"
    assert not fake.requests_to("GET", r"^/repos/acme/plain/contents")
    # Lookups went out as the app, probes as the user.
    for request in fake.requests_to("GET", r"/installation$"):
        assert authorization(request)[0] == "bearer"
    for request in fake.requests_to("GET", r"/contents/"):
        assert authorization(request) == ("token", fake.token)


def test_registry_falls_back_to_the_config_probe_when_the_lookup_fails(fake: FakeGitHub, creds: AppCredentials) -> None:
    # GitHub cannot answer the lookup (a 5xx burst): unknown is not "no".
    fake.fail("GET", r"/installation$", status=502, times=None)
    registry = KernelRegistry(user_client(fake), FakeClock(1000.0), installation_lookup=creds.is_installed)
    started = time.monotonic()
    registry.resolve([event_on(fake, "acme/plain"), event_on(fake, "acme/bare")])
    assert time.monotonic() - started < 10
    entries = {e.repo: e for e in registry.take_changes().values()}
    assert entries["acme/plain"].kernel is True  # the probe found the config
    assert entries["acme/bare"].kernel is False
    assert fake.requests_to("GET", r"^/repos/acme/plain/contents")
    # The failure was not cached: once GitHub answers again, the lookup is authoritative.
    fake.clear_faults()
    assert creds.is_installed("acme/plain") is False


def test_registry_falls_back_when_github_is_unreachable_for_the_lookup(fake: FakeGitHub, creds: AppCredentials) -> None:
    """A dropped connection is "unknown" too: the probe decides, and the poll loop does not crash."""
    fake.fail("GET", r"/installation$", reset=True, times=None)
    assert creds.is_installed("acme/plain") is None
    registry = KernelRegistry(user_client(fake), FakeClock(1000.0), installation_lookup=creds.is_installed)
    registry.resolve([event_on(fake, "acme/plain")])
    [entry] = registry.take_changes().values()
    assert entry.kernel is True
    assert entry.source == f"{CONFIG_PATH} exists"


def test_registry_falls_back_when_github_rejects_the_app(fake: FakeGitHub) -> None:
    wrong_key, _ = _rsa_pair()
    stranger = AppCredentials(str(APP_ID), wrong_key, fake.url)
    assert stranger.is_installed("acme/plain") is None
    [lookup] = fake.requests_to("GET", r"/installation$")
    assert lookup.status == 401
    registry = KernelRegistry(user_client(fake), FakeClock(1000.0), installation_lookup=stranger.is_installed)
    registry.resolve([event_on(fake, "acme/plain")])
    [entry] = registry.take_changes().values()
    assert entry.kernel is True
    assert entry.source == f"{CONFIG_PATH} exists"


# ----------------------------------------------------------------------------- installation tokens


class Shift:
    """Moves PyGithub's clock (``github.Auth``: JWT times and the refresh decision) and the fake's
    clock forward together by ``seconds``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fake: FakeGitHub) -> None:
        self.seconds = 0.0
        shift = self

        class ShiftedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return datetime.fromtimestamp(time.time() + shift.seconds, tz=tz or UTC)

        class ShiftedTime:
            @staticmethod
            def time() -> float:
                return time.time() + shift.seconds

        monkeypatch.setattr(github.Auth, "datetime", ShiftedDatetime)
        monkeypatch.setattr(github.Auth, "time", ShiftedTime)
        monkeypatch.setattr(fake, "now", lambda: time.time() + shift.seconds)


def _comments_by(fake: FakeGitHub, repo: str, author: str) -> int:
    return sum(1 for c in fake.comments_on(repo, 1) if c.author == author)


def test_installation_tokens_are_refreshed_before_they_expire(
    fake: FakeGitHub, creds: AppCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    shift = Shift(monkeypatch, fake)
    client = creds.client_for("acme/bare")
    assert client is not None
    assert creds.client_for("acme/bare") is client  # one client per installation
    client.create_comment("acme/bare", 1, "first")
    client.list_issue_comments("acme/bare", 1)
    [first] = fake.access_tokens
    assert first.expires_at - fake.now() == pytest.approx(3600, abs=5)

    # 59 m 50 s later the first token is still valid at GitHub, but inside PyGithub's refresh
    # margin: the next request brings a new token.
    shift.seconds = 3590
    client.create_comment("acme/bare", 1, "second")
    assert len(fake.access_tokens) == 2
    second = fake.access_tokens[1]
    assert second.token != first.token
    assert first.expires_at > fake.now()  # refreshed before expiry, not after a 401
    writes = fake.requests_to("POST", r"^/repos/acme/bare/issues/1/comments$")
    assert [authorization(r)[1] for r in writes] == [first.token, second.token]

    # Two hours in: the first token is dead at GitHub; the client moved on long ago.
    shift.seconds = 7200
    dead = GitHubClient(first.token, fake.url)
    with pytest.raises(AuthError):
        dead.list_issue_comments("acme/bare", 1)
    probe = fake.requests[-1]
    assert probe.status == 401
    client.create_comment("acme/bare", 1, "third")
    assert len(fake.access_tokens) == 3
    assert _comments_by(fake, "acme/bare", BOT) == 3
    statuses = [r.status for r in fake.requests_to("*", r"^/repos/acme/bare/") if r is not probe]
    assert 401 not in statuses  # the app's client never met an expired token
    # The tokens never reach a message or a repr.
    assert first.token not in repr(client)


@pytest.mark.parametrize("length", [300, 8])
def test_token_length_is_never_assumed(
    fake: FakeGitHub, creds: AppCredentials, monkeypatch: pytest.MonkeyPatch, length: int
) -> None:
    """GitHub says token formats and lengths change; a 300-character or an 8-character token works."""
    original = fake._post_access_token

    def odd_length(ctx: Any, installation_id: str) -> Any:
        response = original(ctx, installation_id)
        record = fake._installation_tokens.pop(response.body["token"])
        record.token = ("ghs_" + "x9Z" * 200)[:length]
        fake._installation_tokens[record.token] = record
        response.body["token"] = record.token
        return response

    monkeypatch.setattr(fake, "_post_access_token", odd_length)
    client = creds.client_for("acme/bare")
    assert client is not None
    client.create_comment("acme/bare", 1, "odd length")
    [token] = fake.access_tokens
    assert len(token.token) == length
    [write] = fake.requests_to("POST", r"^/repos/acme/bare/issues/1/comments$")
    assert authorization(write) == ("token", token.token)
    assert _comments_by(fake, "acme/bare", BOT) == 1


# ----------------------------------------------------------------------------- who acts


def test_app_client_acts_only_for_app_requests_on_public_installed_repos(
    fake: FakeGitHub, creds: AppCredentials
) -> None:
    executor = Executor(user_client(fake), FakeClock(1000.0), app_clients=creds.client_for)
    cases = [
        (comment("acme/bare", "k-app", AuthMode.APP), "acme/bare", BOT),
        (comment("acme/bare", "k-user", AuthMode.USER), "acme/bare", "octo"),
        (comment("acme/plain", "k-app-not-installed", AuthMode.APP), "acme/plain", "octo"),
        (comment("acme/hush", "k-app-private", AuthMode.APP, private=True), "acme/hush", "octo"),
    ]
    for request, repo, author in cases:
        result = executor.execute(request)
        assert result.status.value == "done", (request.idempotency_key, result.detail)
        [posted] = [c for c in fake.comments_on(repo, 1) if f"key={request.idempotency_key}" in c.body]
        assert posted.author == author, request.idempotency_key
    # The marker check (exactly once) reads with the same credentials that write.
    again = executor.execute(comment("acme/bare", "k-app", AuthMode.APP))
    assert again.status.value == "already_done"
    assert _comments_by(fake, "acme/bare", BOT) == 1


def test_app_lookup_failure_falls_back_to_the_users_token(fake: FakeGitHub, creds: AppCredentials) -> None:
    """An app-routed action is not lost because the installation lookup is down: without an answer
    the user's token acts, as it would with no app configured."""
    fake.fail("GET", r"/installation$", status=502, times=None)
    executor = Executor(user_client(fake), FakeClock(1000.0), app_clients=creds.client_for)
    result = executor.execute(comment("acme/bare", "k-lookup-down", AuthMode.APP))
    assert result.status.value == "done", result.detail
    assert [c.author for c in fake.comments_on("acme/bare", 1)] == ["octo"]
    # Once GitHub answers again, the app acts (the failed lookup was not cached).
    fake.clear_faults()
    result = executor.execute(comment("acme/bare", "k-lookup-back", AuthMode.APP))
    assert result.status.value == "done", result.detail
    assert _comments_by(fake, "acme/bare", BOT) == 1


@pytest.fixture
def app_env(
    fake: FakeGitHub, app_key: tuple[str, str], tmp_path: Path, env_for: Callable[..., dict[str, str]]
) -> dict[str, str]:
    key_file = tmp_path / "app-key.pem"
    key_file.write_text(app_key[0], encoding="utf-8")
    return env_for(
        fake,
        SYMBIOTE_APP_ID=str(APP_ID),
        SYMBIOTE_APP_PRIVATE_KEY=str(key_file),
        SYMBIOTE_SECONDS_BETWEEN_WRITES="0",
        SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0",
    )


def _run(fork: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=fork, env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_act_with_app_credentials(fake: FakeGitHub, fork: Path, app_env: dict[str, str], app_key: Any) -> None:
    request = comment("acme/bare", "cli-app", AuthMode.APP).model_dump(mode="json")
    done = _run(fork, app_env, "act", "-", "--json", stdin=json.dumps(request))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "done"
    assert _comments_by(fake, "acme/bare", BOT) == 1
    # The key as PEM text in the variable works the same; the key never shows in output.
    text_env = {**app_env, "SYMBIOTE_APP_PRIVATE_KEY": app_key[0]}
    again = _run(fork, text_env, "act", "-", "--json", stdin=json.dumps({**request, "idempotency_key": "cli-2"}))
    assert again.returncode == 0, again.stderr
    assert _comments_by(fake, "acme/bare", BOT) == 2
    for out in (done, again):
        assert "PRIVATE KEY" not in out.stdout + out.stderr
        assert all(t.token not in out.stdout + out.stderr for t in fake.access_tokens)


def test_cli_poll_with_app_credentials_routes_and_acts(fake: FakeGitHub, fork: Path, app_env: dict[str, str]) -> None:
    baseline = _run(fork, app_env, "poll", "--once")
    assert baseline.returncode == 0, baseline.stderr
    for repo in ("acme/served", "acme/bare", "acme/plain"):
        fake.issue_opened("octo", repo, 2, f"new on {repo}")
    done = _run(fork, app_env, "poll", "--once", "--json")
    assert done.returncode == 0, done.stderr
    routes = {
        line["repo"]: line["route"]
        for line in map(json.loads, done.stdout.splitlines())
        if line.get("kind") == "event" and line.get("type") == "IssuesEvent"
    }
    assert routes == {"acme/served": "kernel", "acme/bare": "app", "acme/plain": "app"}
    authors = {
        repo: [c.author for c in fake.comments_on(repo, 2)] for repo in ("acme/served", "acme/bare", "acme/plain")
    }
    assert authors == {"acme/served": [], "acme/bare": [BOT], "acme/plain": ["octo"]}
    # The registry came from the app's lookups, and is kept on the storage branch.
    assert fake.requests_to("GET", r"^/repos/acme/served/installation$")
    registry = _run(fork, app_env, "store", "get", "registry.json")
    assert registry.returncode == 0, registry.stderr
    assert "app not installed" in registry.stdout
