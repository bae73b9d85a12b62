"""Static checks of the GitHub Actions files: triggers, inputs, permissions, pinning, secret hygiene,
plus the schema validator and zizmor run as subprocesses (the same commands as .ci/lint-workflows)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from symbiote_cli.settings import Settings

try:
    from .fakegithub import FakeGitHub
except ImportError:
    from fakegithub import FakeGitHub  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / ".github" / "workflows" / "symbiote-main.yml"
AUTH = ROOT / ".github" / "workflows" / "symbiote-auth.yml"
ACTION = ROOT / "action.yml"
LINT = ROOT / ".ci" / "lint-workflows"
ALL_FILES = (MAIN, AUTH, ACTION)

PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
}
KERNEL_INPUTS = (
    "stateId",
    "eventName",
    "eventPayload",
    "settings",
    "authToken",
    "ubiquityKernelToken",
    "ref",
    "command",
    "signature",
)
# Symbiote's own form carries no request body (issue 13): the run fetches it from the worker.
OWN_INPUTS = ("state_id", "worker_url")
# The optional GitHub App and the kernel lists reach `symbiote poll` on Actions without editing the
# workflow: credentials as repository secrets, lists as repository variables (`vars.`), named as
# Settings reads them (SYMBIOTE_ prefix + field name).
APP_AND_KERNEL_ENV = {
    "SYMBIOTE_APP_ID": "${{ secrets.SYMBIOTE_APP_ID }}",
    "SYMBIOTE_APP_PRIVATE_KEY": "${{ secrets.SYMBIOTE_APP_PRIVATE_KEY }}",
    "SYMBIOTE_KERNEL_REPOS": "${{ vars.SYMBIOTE_KERNEL_REPOS }}",
    "SYMBIOTE_KERNEL_OWNERS": "${{ vars.SYMBIOTE_KERNEL_OWNERS }}",
}
# GitHub's cap on workflow_dispatch inputs (docs: "You can define up to 25 `inputs`").
MAX_DISPATCH_INPUTS = 25


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    assert True in workflow
    assert "on" not in workflow
    on = workflow[True]
    assert isinstance(on, dict)
    return on


def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) pair of the document, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def strings(doc: Any) -> Iterator[tuple[tuple[Any, ...], str]]:
    for path, value in walk(doc):
        if isinstance(value, str):
            yield path, value


def steps_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    steps = doc["runs"]["steps"] if "runs" in doc else [s for job in doc["jobs"].values() for s in job["steps"]]
    assert all(isinstance(step, dict) for step in steps)
    return list(steps)


def run_scripts(doc: dict[str, Any]) -> list[str]:
    return [step["run"] for step in steps_of(doc) if "run" in step]


def step_named(doc: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [step for step in steps_of(doc) if step.get("name") == name]
    assert len(matches) == 1, name
    return matches[0]


@pytest.fixture(scope="module")
def main() -> dict[str, Any]:
    return load(MAIN)


@pytest.fixture(scope="module")
def auth() -> dict[str, Any]:
    return load(AUTH)


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return load(ACTION)


# ---------------------------------------------------------------- symbiote-main.yml


def test_main_triggers(main: dict[str, Any]) -> None:
    on = triggers(main)
    assert set(on) == {"workflow_dispatch", "schedule"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"user", "duration", "session_id", "callback_url"}
    for spec in inputs.values():
        assert spec["type"] == "string"
        assert spec["required"] is False
    assert inputs["duration"]["default"] == "5h45m"
    [cron] = on["schedule"]
    minute, hour, *_ = cron["cron"].split()
    assert minute not in {"0", "00", "*"}
    assert int(minute) % 2 == 1
    assert hour == "*/6"


def test_main_concurrency_permissions_timeout(main: dict[str, Any]) -> None:
    assert main["concurrency"] == {
        "group": "symbiote-main-${{ inputs.user || github.repository_owner }}",
        "cancel-in-progress": False,
    }
    assert main["permissions"] == {}
    [job] = main["jobs"].values()
    assert job["permissions"] == {"contents": "write", "actions": "write", "id-token": "write"}
    assert job["timeout-minutes"] == 360
    assert job["runs-on"] == "ubuntu-latest"


def test_main_steps(main: dict[str, Any]) -> None:
    steps = steps_of(main)
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"] == {"persist-credentials": False, "fetch-depth": 1}
    setup = steps[1]
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "pyproject.toml"}
    assert steps[2]["run"].strip() == "python -m pip install ."
    poll = step_named(main, "Poll")
    script = poll["run"]
    assert "poll --chain" in script
    assert '--duration "$POLL_DURATION"' in script
    assert "exec symbiote" in script
    env = poll["env"]
    assert env["GH_PAT"] == "${{ secrets.GH_PAT }}"
    assert env["GITHUB_TOKEN"] == "${{ github.token }}"
    assert env["SYMBIOTE_STORAGE_KEY"] == "${{ secrets.SYMBIOTE_STORAGE_KEY }}"
    assert env["SYMBIOTE_CALLBACK_SECRET"] == "${{ secrets.SYMBIOTE_CALLBACK_SECRET }}"
    assert env["POLL_DURATION"] == "${{ inputs.duration || '5h45m' }}"
    assert env["POLL_USER"] == "${{ inputs.user || github.repository_owner }}"
    # A missing GH_PAT fails loudly instead of silently falling back to GITHUB_TOKEN.
    assert 'if [ -z "${GH_PAT:-}" ]' in script
    assert "::error title=GH_PAT is not set::" in script


def test_main_poll_passes_app_credentials_and_kernel_lists(main: dict[str, Any]) -> None:
    poll = step_named(main, "Poll")
    for name, value in APP_AND_KERNEL_ENV.items():
        assert poll["env"].get(name) == value, name
    # Through `env:` only: the script never names them (nor any secret or variable).
    assert "SYMBIOTE_APP" not in poll["run"]
    assert "vars." not in poll["run"]


def test_main_poll_env_names_are_the_ones_settings_reads(main: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYMBIOTE_"):
            monkeypatch.delenv(name)
    given = {
        "SYMBIOTE_APP_ID": "12345",
        "SYMBIOTE_APP_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----",
        "SYMBIOTE_KERNEL_REPOS": "acme/api, acme/web",
        "SYMBIOTE_KERNEL_OWNERS": "ubiquity",
    }
    for name in step_named(main, "Poll")["env"]:
        if name in given:
            monkeypatch.setenv(name, given[name])
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.app_id == "12345"
    assert settings.app_private_key is not None
    assert settings.app_private_key.get_secret_value() == "-----BEGIN PRIVATE KEY-----"
    assert settings.kernel_repos == ["acme/api", "acme/web"]
    assert settings.kernel_owners == ["ubiquity"]


def test_storage_credentials_are_step_scoped(main: dict[str, Any], auth: dict[str, Any]) -> None:
    for doc in (main, auth):
        script = step_named(doc, "Poll" if doc is main else "Act")["run"]
        assert 'echo "::add-mask::$basic"' in script
        assert script.index("::add-mask::$basic") < script.index("GIT_CONFIG_VALUE_0")
        assert 'GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL}/.extraheader"' in script


# ---------------------------------------------------------------- symbiote-auth.yml


def test_auth_triggers_and_inputs(auth: dict[str, Any]) -> None:
    on = triggers(auth)
    assert set(on) == {"workflow_dispatch"}
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == set(OWN_INPUTS) | set(KERNEL_INPUTS)
    assert len(inputs) <= MAX_DISPATCH_INPUTS
    for spec in inputs.values():
        assert spec["type"] == "string"
        assert spec["required"] is False
    # The limit is documented next to the inputs, with its source.
    text = AUTH.read_text(encoding="utf-8")
    assert "up to 25 `inputs`" in text
    assert "https://docs.github.com/" in text


def test_auth_concurrency_permissions(auth: dict[str, Any]) -> None:
    assert auth["concurrency"] == {
        "group": "symbiote-auth-${{ inputs.state_id || inputs.stateId || github.run_id }}",
        "cancel-in-progress": False,
    }
    assert auth["permissions"] == {}
    [job] = auth["jobs"].values()
    assert job["permissions"] == {"contents": "write", "id-token": "write"}
    assert isinstance(job["timeout-minutes"], int)
    assert job["timeout-minutes"] <= 60


def test_auth_act_step(auth: dict[str, Any]) -> None:
    steps = steps_of(auth)
    assert steps[0]["with"] == {"persist-credentials": False, "fetch-depth": 1}
    assert steps[2]["run"].strip() == "python -m pip install ."
    act = step_named(auth, "Act")
    script = act["run"]
    assert "act --inputs-env SYMBIOTE_INPUTS" in script
    assert "export SYMBIOTE_INPUTS" in script
    # The kernel's tokens are masked before anything else runs, and the inputs never pass through
    # `env:` (whose values the runner prints in the log).
    first = script.split("\n")[1]
    assert first == "python -m symbiote_cli.cli.gha mask-inputs authToken ubiquityKernelToken"
    assert "SYMBIOTE_INPUTS" not in act["env"]
    assert all("github.event.inputs" not in value for _, value in strings(act["env"]))
    assert act["env"]["GH_PAT"] == "${{ secrets.GH_PAT }}"
    assert act["env"]["SYMBIOTE_CALLBACK_SECRET"] == "${{ secrets.SYMBIOTE_CALLBACK_SECRET }}"


# ---------------------------------------------------------------- action.yml


def test_action_interface(action: dict[str, Any]) -> None:
    inputs = action["inputs"]
    assert {
        "github-token",
        "user",
        "duration",
        "interval",
        "dry-run",
        "storage-branch",
        "python-version",
    } <= set(inputs)
    assert inputs["github-token"]["required"] is True
    assert "default" not in inputs["github-token"]
    assert inputs["python-version"]["default"] == "3.11"
    assert inputs["dry-run"]["default"] == "false"
    for name, spec in inputs.items():
        assert spec.get("description"), name
    outputs = action["outputs"]
    assert set(outputs) == {"events-processed", "actions-taken", "notifications-processed", "session-id"}
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ steps.poll.outputs.{name} }}}}"
    assert action["runs"]["using"] == "composite"


def test_action_steps(action: dict[str, Any]) -> None:
    steps = steps_of(action)
    assert steps[0]["uses"].startswith("actions/setup-python@")
    assert steps[0]["with"]["update-environment"] is False
    install = steps[1]["run"]
    assert '-m pip install --disable-pip-version-check --quiet "$GITHUB_ACTION_PATH"' in install
    poll = next(step for step in steps if step.get("id") == "poll")
    script = poll["run"]
    assert poll["env"]["TOKEN"] == "${{ inputs.github-token }}"
    # The token is masked before it is used for anything.
    assert script.index('echo "::add-mask::$TOKEN"') < script.index('export GH_PAT="$TOKEN"')
    assert "--chain" not in script
    for flag in ("--user", "--duration", "--interval", "--dry-run", "--storage-branch"):
        assert flag in script
    for step in steps:
        if "run" in step:
            assert step["shell"] == "bash"


# ---------------------------------------------------------------- all files


@pytest.mark.parametrize("path", list(ALL_FILES), ids=lambda p: p.name)
def test_uses_are_pinned_with_tag_comments(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, re.M)
    assert uses
    for ref, rest in uses:
        action, _, sha = ref.partition("@")
        assert action in PINS, ref
        want_sha, want_tag = PINS[action]
        assert sha == want_sha, ref
        assert rest.strip() == f"# {want_tag}", ref


@pytest.mark.parametrize("path", list(ALL_FILES), ids=lambda p: p.name)
def test_no_expressions_inside_run(path: Path) -> None:
    for script in run_scripts(load(path)):
        assert "${{" not in script, script


@pytest.mark.parametrize("path", list(ALL_FILES), ids=lambda p: p.name)
def test_secrets_only_under_env(path: Path) -> None:
    for where, value in strings(load(path)):
        if "secrets." in value or "secrets[" in value:
            assert "env" in where, where
            assert re.fullmatch(r"\$\{\{ secrets\.[A-Z_]+ \}\}", value), value
        assert "toJSON(secrets" not in value


@pytest.mark.parametrize("path", list(ALL_FILES), ids=lambda p: p.name)
def test_untrusted_contexts_never_reach_scripts(path: Path) -> None:
    """Inputs and event data appear only where GitHub treats them as data (env, with, concurrency...)."""
    allowed_roots = {"concurrency", "run-name", "outputs", "inputs"}
    for where, value in strings(load(path)):
        if re.search(r"\$\{\{[^}]*\b(inputs\.|github\.event\.|steps\.)", value):
            assert "run" not in where, where
            assert "env" in where or "with" in where or where[0] in allowed_roots, where


@pytest.mark.parametrize("path", [MAIN, AUTH], ids=lambda p: p.name)
def test_workflow_names_and_shell_safety(path: Path) -> None:
    doc = load(path)
    assert doc["name"].startswith("Symbiote ")
    for script in run_scripts(doc):
        if "\n" in script.strip():
            assert script.startswith("set -euo pipefail\n"), script


def test_lint_script_is_executable_bash() -> None:
    assert LINT.stat().st_mode & 0o111
    text = LINT.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "vendor.github-workflows" in text
    assert "vendor.github-actions" in text
    assert "--offline" in text


# ---------------------------------------------------------------- external linters


def _venv_tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed in this environment (pip install -e '.[dev]')")
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def test_check_jsonschema_workflows() -> None:
    result = _run(
        _venv_tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.github-workflows",
        str(MAIN),
        str(AUTH),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_jsonschema_action() -> None:
    result = _run(_venv_tool("check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION))
    assert result.returncode == 0, result.stdout + result.stderr


ZIZMOR_ARGS = ("--offline", "--no-progress", "--no-config", "--no-ignores", "--color", "never", "--format", "plain")


def test_zizmor_has_no_findings() -> None:
    result = _run(_venv_tool("zizmor"), *ZIZMOR_ARGS, "--strict-collection", ".github/workflows", "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout


def test_zizmor_catches_an_injection(tmp_path: Path) -> None:
    """The zizmor run above is not vacuous: the same invocation flags a template injection."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non:\n  workflow_dispatch:\n    inputs:\n      x:\n        type: string\n"
        "permissions: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ inputs.x }} ${{ github.event.issue.title }}\n",
        encoding="utf-8",
    )
    result = _run(_venv_tool("zizmor"), *ZIZMOR_ARGS, str(bad.parent), cwd=tmp_path)
    assert result.returncode != 0
    assert "template-injection" in result.stdout


def test_lint_workflows_script_passes() -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    _venv_tool("zizmor")
    _venv_tool("check-jsonschema")
    result = _run(str(LINT))
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- the run: scripts, with a stub CLI


def _stub_cli(path: Path) -> None:
    """An executable that records its argv and environment instead of running Symbiote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "with open(os.environ['STUB_OUT'], 'w') as fh:\n"
        "    json.dump({'argv': sys.argv[1:], 'env': dict(os.environ)}, fh)\n",
        encoding="utf-8",
    )
    path.chmod(0o755)


def _run_script(script: str, env: dict[str, str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run a `run:` script the way the runner does (bash -e -o pipefail on a file)."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    bin_dir = tmp_path / "bin"
    _stub_cli(bin_dir / "symbiote")
    if not (bin_dir / "python").exists():
        (bin_dir / "python").symlink_to(sys.executable)
    script_file = tmp_path / "step.sh"
    script_file.write_text(script, encoding="utf-8")
    out = tmp_path / "stub.json"
    full_env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "GITHUB_SERVER_URL": "https://github.com",
        "STUB_OUT": str(out),
        **env,
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    recorded = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    return result, recorded


def _basic(token: str) -> str:
    return base64.b64encode(f"x-access-token:{token}".encode()).decode()


def test_main_poll_script_builds_flags_from_env(main: dict[str, Any], tmp_path: Path) -> None:
    hostile_user = 'octocat"; touch pwned; echo "'
    result, recorded = _run_script(
        step_named(main, "Poll")["run"],
        {
            "GH_PAT": "ghp_user",
            "GITHUB_TOKEN": "ghs_job",
            "POLL_USER": hostile_user,
            "POLL_DURATION": "5h45m",
            "POLL_SESSION_ID": "",
            "POLL_CALLBACK_URL": "https://worker.example/cb?a=1&b=$(id)",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"::add-mask::{_basic('ghs_job')}"
    assert recorded["argv"] == [
        "poll",
        "--chain",
        "--user",
        hostile_user,
        "--duration",
        "5h45m",
        "--callback-url",
        "https://worker.example/cb?a=1&b=$(id)",
    ]
    env = recorded["env"]
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    assert env["GIT_CONFIG_VALUE_0"] == f"AUTHORIZATION: basic {_basic('ghs_job')}"
    assert env["GH_PAT"] == "ghp_user"
    assert not (ROOT / "pwned").exists()


def test_main_poll_script_session_id(main: dict[str, Any], tmp_path: Path) -> None:
    result, recorded = _run_script(
        step_named(main, "Poll")["run"],
        {
            "GH_PAT": "ghp_user",
            "GITHUB_TOKEN": "ghs_job",
            "POLL_USER": "octocat",
            "POLL_DURATION": "90m",
            "POLL_SESSION_ID": "sess-1",
            "POLL_CALLBACK_URL": "",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert recorded["argv"] == ["poll", "--chain", "--user", "octocat", "--duration", "90m", "--session-id", "sess-1"]


def test_main_poll_script_fails_clearly_without_gh_pat(main: dict[str, Any], tmp_path: Path) -> None:
    result, recorded = _run_script(
        step_named(main, "Poll")["run"],
        {"GH_PAT": "", "GITHUB_TOKEN": "ghs_job", "POLL_USER": "o", "POLL_DURATION": "1m"},
        tmp_path,
    )
    assert result.returncode == 1
    assert recorded is None
    assert result.stdout.startswith("::error title=GH_PAT is not set::Add a repository secret named GH_PAT")


def _poll_once(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symbiote_cli", "poll", "--once", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _routes(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The routes of the IssuesEvents this poll saw (our own acknowledgment comments come back too)."""
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return [line["route"] for line in lines if line.get("kind") == "event" and line.get("type") == "IssuesEvent"]


def test_poll_reads_the_workflows_empty_values_as_unset(
    main: dict[str, Any], fake_github: FakeGitHub, fork: Path, env_for: Callable[..., dict[str, str]]
) -> None:
    """Actions gives an unset secret or variable as "": `symbiote poll` then runs as if it were not set
    (no app, no kernel lists); set, the same names take effect."""
    names = [name for name in step_named(main, "Poll")["env"] if name in APP_AND_KERNEL_ENV]
    assert sorted(names) == sorted(APP_AND_KERNEL_ENV)
    fake_github.add_repo("octo/hello")
    env = env_for(fake_github, SYMBIOTE_SECONDS_BETWEEN_WRITES="0", SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
    empty = {**env, **dict.fromkeys(names, "")}
    baseline = _poll_once(empty, fork)
    assert baseline.returncode == 0, baseline.stderr

    fake_github.issue_opened("octo", "octo/hello", 1, "new bug")
    done = _poll_once(empty, fork)
    assert done.returncode == 0, done.stderr
    assert _routes(done) == ["app"]
    assert sum("<!-- symbiote:" in c.body for c in fake_github.comments_on("octo/hello", 1)) == 1

    # Controls: the same names, set, are read by poll.
    fake_github.issue_opened("octo", "octo/hello", 2, "another")
    kernel = _poll_once({**empty, "SYMBIOTE_KERNEL_OWNERS": "octo"}, fork)
    assert kernel.returncode == 0, kernel.stderr
    assert _routes(kernel) == ["kernel"]
    assert not fake_github.comments_on("octo/hello", 2)
    bad_app = _poll_once({**empty, "SYMBIOTE_APP_ID": "1", "SYMBIOTE_APP_PRIVATE_KEY": "not-a-key"}, fork)
    assert bad_app.returncode != 0
    assert "SYMBIOTE_APP_PRIVATE_KEY must be a PEM private key" in bad_app.stderr
    assert "not-a-key" not in bad_app.stdout + bad_app.stderr
    for done in (baseline, kernel, bad_app):
        assert str(fake_github.token) not in done.stdout + done.stderr


def test_auth_act_script_masks_then_passes_inputs(auth: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (it is on GitHub's ubuntu runners)")
    inputs = {
        "state_id": "",
        "worker_url": "",
        "stateId": "kernel-state-1",
        "eventName": "issue_comment.created",
        "eventPayload": "compressed",
        "settings": "{}",
        "authToken": "ghs_installation",
        "ubiquityKernelToken": "kernel.jwt.token",
        "ref": "main",
        "command": "null",
        "signature": "sig",
    }
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": inputs}), encoding="utf-8")
    result, recorded = _run_script(
        step_named(auth, "Act")["run"],
        {"GH_PAT": "ghp_user", "GITHUB_TOKEN": "ghs_job", "GITHUB_EVENT_PATH": str(event)},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "::add-mask::ghs_installation",
        "::add-mask::kernel.jwt.token",
        f"::add-mask::{_basic('ghs_job')}",
    ]
    assert recorded["argv"] == ["act", "--inputs-env", "SYMBIOTE_INPUTS"]
    assert json.loads(recorded["env"]["SYMBIOTE_INPUTS"]) == inputs


def test_auth_act_script_own_form_passes_the_state_id_and_worker_url_only(auth: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (it is on GitHub's ubuntu runners)")
    inputs = {"state_id": "s1", "worker_url": "https://w.example"}
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"inputs": inputs}), encoding="utf-8")
    result, recorded = _run_script(
        step_named(auth, "Act")["run"],
        {"GH_PAT": "ghp_user", "GITHUB_TOKEN": "ghs_job", "GITHUB_EVENT_PATH": str(event)},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert recorded["argv"] == ["act", "--inputs-env", "SYMBIOTE_INPUTS"]
    assert json.loads(recorded["env"]["SYMBIOTE_INPUTS"]) == inputs


def test_main_poll_script_reports_to_the_worker_url_variable(main: dict[str, Any], tmp_path: Path) -> None:
    """Scheduled and manual runs learn the worker's URL from the repository variable."""
    result, recorded = _run_script(
        step_named(main, "Poll")["run"],
        {
            "GH_PAT": "ghp_user",
            "GITHUB_TOKEN": "ghs_job",
            "POLL_USER": "octocat",
            "POLL_DURATION": "90m",
            "POLL_SESSION_ID": "",
            "POLL_CALLBACK_URL": "",
            "SYMBIOTE_WORKER_URL": "https://worker.example/",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert recorded["argv"][-2:] == ["--callback-url", "https://worker.example/session/callback"]
    assert step_named(main, "Poll")["env"]["SYMBIOTE_WORKER_URL"] == "${{ vars.SYMBIOTE_WORKER_URL }}"


def _action_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    _stub_cli(tmp_path / "runner-temp" / "symbiote-venv" / "bin" / "symbiote")
    env = {
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "TOKEN": "ghp_caller",
        "STORAGE_TOKEN": "ghs_caller_job",
        "POLL_USER": "",
        "POLL_DURATION": "5h45m",
        "POLL_INTERVAL": "",
        "POLL_DRY_RUN": "false",
        "POLL_SOURCES": "",
        "POLL_STORAGE_BRANCH": "__STORAGE__",
    }
    env.update(overrides)
    return env


def _action_poll_script(action: dict[str, Any]) -> str:
    return str(next(step for step in steps_of(action) if step.get("id") == "poll")["run"])


def test_action_poll_script(action: dict[str, Any], tmp_path: Path) -> None:
    result, recorded = _run_script(
        _action_poll_script(action),
        _action_env(
            tmp_path, POLL_USER="octocat", POLL_INTERVAL="30", POLL_DRY_RUN="true", POLL_SOURCES="events,notifications"
        ),
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["::add-mask::ghp_caller", f"::add-mask::{_basic('ghs_caller_job')}"]
    assert recorded["argv"] == [
        "poll",
        "--user",
        "octocat",
        "--duration",
        "5h45m",
        "--interval",
        "30",
        "--source",
        "events,notifications",
        "--storage-branch",
        "__STORAGE__",
        "--dry-run",
    ]
    env = recorded["env"]
    assert env["GH_PAT"] == "ghp_caller"
    assert "TOKEN" not in env
    assert "STORAGE_TOKEN" not in env
    assert env["GIT_CONFIG_VALUE_0"] == f"AUTHORIZATION: basic {_basic('ghs_caller_job')}"


def test_action_poll_script_without_storage_token(action: dict[str, Any], tmp_path: Path) -> None:
    result, recorded = _run_script(_action_poll_script(action), _action_env(tmp_path, STORAGE_TOKEN=""), tmp_path)
    assert result.returncode == 0, result.stderr
    assert recorded["argv"] == ["poll", "--duration", "5h45m", "--storage-branch", "__STORAGE__"]
    assert "GIT_CONFIG_COUNT" not in recorded["env"]


@pytest.mark.parametrize(
    ("overrides", "code", "message"),
    [
        ({"TOKEN": ""}, 1, "the github-token input is empty"),
        ({"TOKEN": "ghp_a\n::warning::x"}, 1, "github-token must be a single line"),
        ({"POLL_DRY_RUN": "yes"}, 2, 'dry-run must be "true" or "false"'),
    ],
)
def test_action_poll_script_rejects_bad_inputs(
    action: dict[str, Any], tmp_path: Path, overrides: dict[str, str], code: int, message: str
) -> None:
    result, recorded = _run_script(_action_poll_script(action), _action_env(tmp_path, **overrides), tmp_path)
    assert result.returncode == code
    assert recorded is None
    assert message in result.stdout
    assert "::add-mask::ghp_a" not in result.stdout
