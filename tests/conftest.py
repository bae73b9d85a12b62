"""Shared fixtures: a fake GitHub, throw-away git repositories, a clean CLI environment.

Keep this generic; test modules add their own fixtures.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:  # imported as ``tests.conftest`` or top-level (pytest rootdir import)
    from .fakegithub import FakeGitHub
except ImportError:
    from fakegithub import FakeGitHub  # type: ignore[no-redef]

GIT_IDENTITY = ("-c", "user.name=Symbiote Test", "-c", "user.email=symbiote-test@example.invalid")
# Inherited variables that would change what the CLI or git does under test.
_DROP_PREFIXES = ("SYMBIOTE_", "GITHUB_", "GH_", "GIT_", "RUNNER_", "ACTIONS_")
_DROP_NAMES = {"CI", "FORCE_COLOR", "PYTHONSTARTUP", "LOG_LEVEL"}


def git_env(home: Path | None = None) -> dict[str, str]:
    """An environment in which git ignores the machine's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_",))}
    env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"})
    if home is not None:
        env["HOME"] = str(home)
    return env


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in ``cwd`` with an explicit identity; return stdout (raises on failure)."""
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args],
        cwd=cwd,
        env=env or git_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture(autouse=True)
def _fakes_stay_honest() -> Iterator[None]:
    """Any FakeGitHub a test builds itself must also end without OpenAPI violations."""
    before = list(FakeGitHub.instances)
    yield
    new = [fake for fake in list(FakeGitHub.instances) if all(fake is not old for old in before)]
    problems = [problem for fake in new for problem in fake.spec_violations]
    assert not problems, "fake GitHub saw OpenAPI violations:\n" + "\n".join(problems)


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A started FakeGitHub with user "octo" whose token is ``fake_github.token``
    ("ghp_canary_" + random, so a leak is easy to grep for). Fails the test at teardown
    if the fake saw a request or sent a response that GitHub's OpenAPI description
    rejects (clear ``spec_violations`` in a test that provokes them on purpose)."""
    token = "ghp_canary_" + secrets.token_hex(12)
    with FakeGitHub() as fake:
        fake.add_user("octo", token)
        fake.token = token
        yield fake
    assert not fake.spec_violations, "fake GitHub saw OpenAPI violations:\n" + "\n".join(fake.spec_violations)


@pytest.fixture
def bare_origin(tmp_path: Path) -> Path:
    """An empty bare repository (default branch main) to push to."""
    path = tmp_path / "origin.git"
    path.mkdir()
    git(path, "init", "--quiet", "--bare", "--initial-branch=main")
    return path


@pytest.fixture
def fork(tmp_path: Path, bare_origin: Path) -> Path:
    """A working repository on ``main`` with one commit (README.md), whose ``origin`` is
    ``bare_origin`` and already holds that commit."""
    path = tmp_path / "fork"
    path.mkdir()
    git(path, "init", "--quiet", "--initial-branch=main")
    git(path, "remote", "add", "origin", str(bare_origin))
    (path / "README.md").write_text("# fork\n", encoding="utf-8")
    git(path, "add", "README.md")
    git(path, "commit", "--quiet", "-m", "Initial commit")
    git(path, "push", "--quiet", "-u", "origin", "main")
    return path


def make_env(fake: FakeGitHub, home: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for running the CLI as a subprocess against ``fake``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES}
    home.mkdir(parents=True, exist_ok=True)
    secret = token if token is not None else fake.token
    if secret is None:
        raise ValueError("the fake has no default token: pass token=")
    env.update(
        {
            "GH_PAT": secret,
            "GITHUB_API_URL": fake.url,
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


@pytest.fixture
def env_for(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """``env_for(fake, token=None, **extra)``: environment for the CLI as a subprocess
    (GH_PAT, GITHUB_API_URL=fake.url, HOME under tmp_path, no git config, SYMBIOTE_*,
    GITHUB_* and GH_* from the outer environment removed)."""

    def build(fake: FakeGitHub, token: str | None = None, **extra: str) -> dict[str, str]:
        return make_env(fake, tmp_path / "home", token, **extra)

    return build
