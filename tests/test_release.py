"""The release: .github/workflows/release.yml, scripts/release_check.py, CHANGELOG.md and the version.

The build job's steps run here as the runner runs them (``bash -eo pipefail`` on the step's own
``run:`` text, in a copy of the repository's files, with ``GITHUB_REF_NAME`` set to the tag): the
tag check, ``python -m build``, ``twine check`` and the install of the wheel into a clean virtualenv
with ``symbiote --version`` and ``--help``. The release job's steps run too, with a stand-in ``gh``
and a bare repository as ``origin``, so the notes and the major-tag move are exercised; only the
upload to the package index and GitHub's own side of the release cannot run on this machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import git, git_env
from test_workflows import PINS, ROOT, load, run_scripts, step_named, steps_of, strings, triggers

import symbiote_cli

RELEASE = ROOT / ".github" / "workflows" / "release.yml"
SCRIPT = ROOT / "scripts" / "release_check.py"
CHANGELOG = ROOT / "CHANGELOG.md"
VERSION = symbiote_cli.__version__
TAG = f"v{VERSION}"
MAJOR, MINOR, PATCH = (int(part) for part in VERSION.split("."))
WRONG_TAG = f"v{MAJOR}.{MINOR}.{PATCH + 1}"
# Actions only the release workflow uses: full SHAs of the release tags named in the comments.
RELEASE_PINS = {
    **PINS,
    "actions/upload-artifact": ("043fb46d1a93c77aae656e7c1c64a875d1fc6a0a", "v7.0.1"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "pypa/gh-action-pypi-publish": ("dc37677b2e1c63e2034f94d8a5b11f265b73ba33", "v1.14.2"),
}
BUILD_STEPS = (
    "Check the tag against the version",
    "Build the sdist and wheel",
    "Check the distributions",
    "Install the wheel into a clean virtualenv",
)


def _load_release_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release_check", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release_check"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


rc = _load_release_check()


@pytest.fixture(scope="module")
def release() -> dict[str, Any]:
    return load(RELEASE)


# ----------------------------------------------------------------------------- running steps


def _shims(directory: Path) -> Path:
    """``python`` and ``python3`` as this interpreter (the dev environment has build and twine)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
        shim.chmod(0o755)
    return directory


def _step_env(temp: Path, **extra: str) -> dict[str, str]:
    """The runner's variables a step uses, over an environment with no inherited GitHub or git settings."""
    env = {k: v for k, v in git_env().items() if not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV"))}
    runner_temp = temp / "runner-temp"
    runner_temp.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PATH": f"{_shims(temp / 'shims')}{os.pathsep}{os.environ.get('PATH', '')}",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REF_NAME": TAG,
            "GITHUB_REPOSITORY": "octo/symbiote",
            "GITHUB_SERVER_URL": "https://github.com",
            "RUNNER_TEMP": str(runner_temp),
        }
    )
    env.update(extra)
    return env


def run_step(script: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """A ``run:`` script the way the runner runs it: a file given to ``bash -e -o pipefail``."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not available")
    script_file = Path(env["RUNNER_TEMP"]) / "step.sh"
    script_file.write_text(script, encoding="utf-8")
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checkout_copy(destination: Path) -> Path:
    """The files a checkout of this commit would hold (tracked and new, not ignored), copied."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git metadata to list its files")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        env=git_env(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@dataclass
class Released:
    """The build job, run once for the module: its checkout, environment and each step's result."""

    tree: Path
    env: dict[str, str]
    results: dict[str, subprocess.CompletedProcess[str]]

    @property
    def dist(self) -> Path:
        return self.tree / "dist"

    @property
    def venv(self) -> Path:
        return Path(self.env["RUNNER_TEMP"]) / "release-venv"


@pytest.fixture(scope="module")
def released(release: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Released:
    temp = tmp_path_factory.mktemp("release")
    tree = _checkout_copy(temp / "checkout")
    env = _step_env(temp)
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for name in BUILD_STEPS:
        result = run_step(step_named(release, name)["run"], tree, env)
        results[name] = result
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
    return Released(tree, env, results)


# ----------------------------------------------------------------------------- the build job, run


def test_build_job_builds_checks_and_installs_the_tagged_version(released: Released) -> None:
    checked = released.results["Check the tag against the version"].stdout
    assert checked == f"{TAG}: symbiote-cli {VERSION}, CHANGELOG.md section and action.yml are ready\n"
    wheel = f"symbiote_cli-{VERSION}-py3-none-any.whl"
    sdist = f"symbiote_cli-{VERSION}.tar.gz"
    assert sorted(p.name for p in released.dist.iterdir()) == [wheel, sdist]
    # twine check --strict passed on both (it exits non-zero on a warning), then release_check.
    twine = re.sub(r"\x1b\[[0-9;]*m", "", released.results["Check the distributions"].stdout)
    assert f"Checking dist/{wheel}: PASSED" in twine
    assert f"Checking dist/{sdist}: PASSED" in twine
    assert twine.endswith(f"{TAG}: {wheel}, {sdist}\n")
    installed = released.results["Install the wheel into a clean virtualenv"].stdout
    assert installed == f"{TAG}: the installed CLI is symbiote {VERSION}\n"


def test_clean_virtualenv_runs_the_wheel_not_the_checkout(released: Released) -> None:
    """The venv has no system site-packages, and its symbiote_cli is the installed wheel's."""
    config = (released.venv / "pyvenv.cfg").read_text(encoding="utf-8")
    assert re.search(r"^include-system-site-packages = false$", config, re.M)
    bin_dir = released.venv / "bin"
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import symbiote_cli; print(symbiote_cli.__file__)"],
        cwd=released.tree.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(released.venv)
    version = subprocess.run([str(bin_dir / "symbiote"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout == f"symbiote {VERSION}\n"
    helped = subprocess.run([str(bin_dir / "symbiote"), "--help"], capture_output=True, text=True, check=True)
    for command in ("poll", "route", "act", "serve", "doctor", "store", "rules"):
        assert command in helped.stdout


def test_wheel_metadata_is_the_package_version(released: Released) -> None:
    for path in released.dist.iterdir():
        assert rc.distribution_metadata(path) == ("symbiote-cli", VERSION)


def test_wrong_tag_stops_the_release_before_anything_is_built(release: dict[str, Any], tmp_path: Path) -> None:
    result = run_step(
        step_named(release, "Check the tag against the version")["run"],
        ROOT,
        _step_env(tmp_path, GITHUB_REF_NAME=WRONG_TAG),
    )
    assert result.returncode == 1
    assert result.stdout == (
        f"::error title=Release check::tag {WRONG_TAG} does not match the package version {VERSION} "
        f"(symbiote_cli/__init__.py): tag {TAG} instead, or bump __version__ and CHANGELOG.md and tag again\n"
    )
    # The build job stops at its first failing step: this check comes before the build and the upload.
    names = [step.get("name") for step in release["jobs"]["build"]["steps"]]
    assert names.index("Check the tag against the version") < names.index("Build the sdist and wheel")


def test_wrong_tag_fails_the_dist_and_cli_checks_too(
    release: dict[str, Any], released: Released, tmp_path: Path
) -> None:
    """Each later check compares with the tag too, so a mismatch cannot slip through a changed first step."""
    env = _step_env(tmp_path, GITHUB_REF_NAME=WRONG_TAG)
    result = run_step(step_named(release, "Check the distributions")["run"], released.tree, env)
    assert result.returncode == 1
    wrong = f"{MAJOR}.{MINOR}.{PATCH + 1}"
    assert result.stdout.splitlines()[-1] == (
        f"::error title=Release check::symbiote_cli-{VERSION}-py3-none-any.whl is not named for symbiote-cli {wrong}"
    )
    cli = subprocess.run(
        [sys.executable, str(SCRIPT), "cli", WRONG_TAG, str(released.venv / "bin" / "symbiote")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert cli.returncode == 1
    assert cli.stdout == (
        f"::error title=Release check::the installed CLI says 'symbiote {VERSION}' to --version, "
        f"expected 'symbiote {wrong}'\n"
    )


def test_release_check_outside_actions_prints_one_plain_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), "check", TAG], capture_output=True, text=True, env=env, check=False
    )
    assert ok.returncode == 0, ok.stderr
    for bad in (WRONG_TAG, f"v{VERSION}-rc1", VERSION, f"v{MAJOR}"):
        result = subprocess.run(
            [sys.executable, str(SCRIPT), "check", bad], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode == 1, bad
        assert result.stdout == ""
        assert result.stderr.startswith("release_check: ")
        assert result.stderr.count("\n") == 1
    usage = subprocess.run([sys.executable, str(SCRIPT), "nope"], capture_output=True, text=True, env=env, check=False)
    assert usage.returncode == 2


# ----------------------------------------------------------------------------- the release job, run


def _stub_gh(directory: Path) -> None:
    """A ``gh`` that records its arguments and the notes file it was given."""
    directory.mkdir(parents=True, exist_ok=True)
    stub = directory / "gh"
    stub.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "args = sys.argv[1:]\n"
        "notes = open(args[args.index('--notes-file') + 1], encoding='utf-8').read()\n"
        "with open(os.environ['STUB_OUT'], 'w', encoding='utf-8') as fh:\n"
        "    json.dump({'argv': args, 'notes': notes, 'token': os.environ.get('GH_TOKEN')}, fh)\n",
        encoding="utf-8",
    )
    stub.chmod(0o755)


def test_github_release_gets_the_changelog_section_and_the_distributions(
    release: dict[str, Any], released: Released, tmp_path: Path
) -> None:
    _stub_gh(tmp_path / "gh-bin")
    env = _step_env(tmp_path, GH_TOKEN="ghs_job", STUB_OUT=str(tmp_path / "gh.json"))
    env["PATH"] = f"{tmp_path / 'gh-bin'}{os.pathsep}{env['PATH']}"
    step = step_named(release, "Create the GitHub release")
    assert step["env"] == {"GH_TOKEN": "${{ github.token }}"}
    result = run_step(step["run"], released.tree, env)
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = json.loads((tmp_path / "gh.json").read_text(encoding="utf-8"))
    notes_file = str(Path(env["RUNNER_TEMP"]) / "release-notes.md")
    assert recorded["argv"] == [
        "release",
        "create",
        TAG,
        f"dist/symbiote_cli-{VERSION}-py3-none-any.whl",
        f"dist/symbiote_cli-{VERSION}.tar.gz",
        "--repo",
        "octo/symbiote",
        "--verify-tag",
        "--title",
        TAG,
        "--notes-file",
        notes_file,
    ]
    assert recorded["notes"] == rc.release_notes(CHANGELOG.read_text(encoding="utf-8"), VERSION)
    assert "### " in recorded["notes"]
    assert "## [" not in recorded["notes"]
    assert recorded["token"] == "ghs_job"


@dataclass
class Origin:
    """A bare ``origin`` with release tags, and the helpers to release from it."""

    bare: Path
    work: Path
    temp: Path

    def commit(self, message: str, *, tag: str | None = None, branch: str = "main") -> str:
        git(self.work, "checkout", "--quiet", branch)
        (self.work / "notes.txt").write_text(message + "\n", encoding="utf-8")
        git(self.work, "add", "notes.txt")
        git(self.work, "commit", "--quiet", "-m", message)
        sha = git(self.work, "rev-parse", "HEAD").strip()
        if tag:
            git(self.work, "tag", "-a", tag, "-m", tag)
        git(self.work, "push", "--quiet", "origin", branch, "--tags")
        return sha

    def tag_at(self, name: str) -> str | None:
        found = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}"],
            cwd=self.bare,
            env=git_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return found.stdout.strip() or None

    def move_major(self, script: str, tag: str) -> subprocess.CompletedProcess[str]:
        """The runner's checkout of ``tag`` (actions/checkout: detached at the tag), then the step."""
        runner = self.temp / f"runner-{tag}"
        git(self.temp, "clone", "--quiet", str(self.bare), str(runner))
        git(runner, "checkout", "--quiet", "--detach", tag)
        return run_step(script, runner, _step_env(self.temp / f"env-{tag}", GITHUB_REF_NAME=tag, GITHUB_TOKEN="ghs_x"))


@pytest.fixture
def origin(tmp_path: Path, bare_origin: Path) -> Origin:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "--quiet", "--initial-branch=main")
    (work / "scripts").mkdir()
    shutil.copy2(SCRIPT, work / "scripts" / "release_check.py")
    git(work, "add", "scripts")
    git(work, "commit", "--quiet", "-m", "release tooling")
    git(work, "remote", "add", "origin", str(bare_origin))
    git(work, "push", "--quiet", "origin", "main")
    return Origin(bare_origin, work, tmp_path)


def test_major_tag_moves_to_the_newest_release_only(release: dict[str, Any], origin: Origin) -> None:
    step = step_named(release, "Move the major tag")
    assert step["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    script = step["run"]

    # The first release of a major version creates its tag.
    first = origin.commit("1.0.0", tag="v1.0.0")
    result = origin.move_major(script, "v1.0.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("::add-mask::")
    assert origin.tag_at("v1") == first

    # A newer release moves it.
    second = origin.commit("1.1.0", tag="v1.1.0")
    result = origin.move_major(script, "v1.1.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"v1 -> {second} (v1.1.0)"
    assert origin.tag_at("v1") == second

    # A fix for the older line does not pull v1 back.
    git(origin.work, "branch", "release-1.0", "v1.0.0")
    origin.commit("1.0.1", tag="v1.0.1", branch="release-1.0")
    result = origin.move_major(script, "v1.0.1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "::notice title=Major tag not moved::v1.0.1 is not the newest release" in result.stdout
    assert origin.tag_at("v1") == second

    # A new major version starts its own tag and leaves v1 alone.
    third = origin.commit("2.0.0", tag="v2.0.0")
    result = origin.move_major(script, "v2.0.0")
    assert result.returncode == 0, result.stdout + result.stderr
    assert origin.tag_at("v2") == third
    assert origin.tag_at("v1") == second


def test_major_tag_refused_push_says_how_to_move_it_by_hand(release: dict[str, Any], origin: Origin) -> None:
    origin.commit("1.0.0", tag="v1.0.0")
    hook = origin.bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'refusing to allow a GitHub App to create or update workflow' >&2\nexit 1\n",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    result = origin.move_major(step_named(release, "Move the major tag")["run"], "v1.0.0")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        "::error title=Major tag not moved::run: git tag -f v1 v1.0.0 && git push -f origin v1"
    )
    assert origin.tag_at("v1") is None


# ----------------------------------------------------------------------------- the workflow's shape


def _filter_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter-pattern syntax for the characters release.yml uses: ``[...]``, ``+``, ``*``, literals."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "[":
            end = pattern.index("]", index)
            out.append(pattern[index : end + 1])
            index = end
        elif char == "+":
            out.append("+")
        elif char == "*":
            out.append("[^/]*")
        elif char in "?!\\":
            raise ValueError(f"unsupported filter character {char!r} in {pattern!r}")
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def test_trigger_is_release_tags_only(release: dict[str, Any]) -> None:
    assert triggers(release) == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    [pattern] = triggers(release)["push"]["tags"]
    regex = _filter_regex(pattern)
    for tag in ("v1.0.0", "v1.2.3", "v10.20.30", "v0.1.0"):
        assert regex.fullmatch(tag), tag
        rc.parse_tag(tag)
    for tag in ("v1", "v1.2", "1.2.3", "v1.2.3-rc1", "v1.2.3.4", "release-1.2.3", "v1.2.x"):
        assert not regex.fullmatch(tag), tag
        with pytest.raises(rc.ReleaseError, match="is not a release tag"):
            rc.parse_tag(tag)
    # The trigger lets leading zeros through; the first step refuses them.
    assert regex.fullmatch("v01.2.3")
    with pytest.raises(rc.ReleaseError):
        rc.parse_tag("v01.2.3")


def test_permissions_are_minimal_per_job(release: dict[str, Any]) -> None:
    assert release["permissions"] == {}
    jobs = release["jobs"]
    assert set(jobs) == {"build", "publish", "release"}
    assert jobs["build"]["permissions"] == {"contents": "read"}
    assert jobs["publish"]["permissions"] == {"id-token": "write"}
    assert jobs["release"]["permissions"] == {"contents": "write"}
    # Only the publish job may ask for an OIDC token, and it may do nothing else with GitHub.
    assert [name for name, job in jobs.items() if "id-token" in job["permissions"]] == ["publish"]
    assert jobs["publish"]["needs"] == "build"
    assert jobs["release"]["needs"] == "publish"
    assert release["concurrency"] == {
        "group": "symbiote-release-${{ github.ref_name }}",
        "cancel-in-progress": False,
    }
    for job in jobs.values():
        assert job["runs-on"] == "ubuntu-latest"
        assert job["timeout-minutes"] <= 15


def test_publish_job_uses_trusted_publishing_and_the_checked_files(release: dict[str, Any]) -> None:
    publish = release["jobs"]["publish"]
    assert set(publish["environment"]) == {"name", "url"}
    assert publish["environment"]["name"] == "pypi"  # the environment the trusted publisher names
    assert re.fullmatch(r"https://[a-z.]+/project/symbiote-cli/", publish["environment"]["url"])
    download, upload = publish["steps"]
    assert download["uses"].startswith("actions/download-artifact@")
    assert download["with"] == {"name": "dist", "path": "dist/"}
    assert upload["uses"].startswith("pypa/gh-action-pypi-publish@")
    # No password or token input: the action takes the OIDC route.
    assert upload["with"] == {"packages-dir": "dist/"}
    assert not any("secrets." in value for _, value in strings(release))
    # Built once: only the build job builds, and it hands over exactly dist/.
    keep = step_named(release, "Keep the distributions")
    assert keep["with"]["name"] == "dist"
    assert keep["with"]["path"] == "dist/"
    assert keep["with"]["if-no-files-found"] == "error"
    builds = [s for s in run_scripts(release) if "python -m build" in s]
    assert builds == ["python -m build --outdir dist ."]


def test_build_job_steps_and_order(release: dict[str, Any]) -> None:
    steps = release["jobs"]["build"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"] == {"persist-credentials": False}
    assert steps[1]["uses"].startswith("actions/setup-python@")
    # No cache in a workflow that publishes (zizmor: cache-poisoning).
    assert steps[1]["with"] == {"python-version": "3.11"}
    names = [step["name"] for step in steps]
    assert names[2:] == [
        "Check the tag against the version",
        "Install the build tools",
        "Build the sdist and wheel",
        "Check the distributions",
        "Install the wheel into a clean virtualenv",
        "Keep the distributions",
    ]
    tools = step_named(release, "Install the build tools")["run"]
    assert re.search(r"\bbuild==\d+\.\d+(\.\d+)? twine==\d+\.\d+(\.\d+)?$", tools.strip()), tools
    release_steps = release["jobs"]["release"]["steps"]
    assert release_steps[0]["with"] == {"persist-credentials": False}


def test_every_uses_is_pinned_to_a_full_sha(release: dict[str, Any]) -> None:
    text = RELEASE.read_text(encoding="utf-8")
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, re.M)
    assert len(uses) == len([step for step in steps_of(release) if "uses" in step]) == 7
    for ref, rest in uses:
        action, _, sha = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", sha), ref
        assert RELEASE_PINS[action] == (sha, rest.strip().removeprefix("# ")), ref


def test_scripts_take_data_only_from_the_environment(release: dict[str, Any]) -> None:
    for script in run_scripts(release):
        assert "${{" not in script, script
        if "\n" in script.strip():
            assert script.startswith("set -euo pipefail\n"), script
    for where, value in strings(release):
        if "${{" in value:
            if where[0] == "concurrency":
                assert value == "symbiote-release-${{ github.ref_name }}", value
                continue
            assert where[-2] == "env", where
            assert value == "${{ github.token }}", value
    assert release["name"] == "Symbiote release"


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed in this environment (pip install -e '.[dev]')")
    return found


def test_release_workflow_is_schema_valid_and_zizmor_clean(tmp_path: Path) -> None:
    schema = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(RELEASE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr
    # zizmor's strictest persona, on this file alone, with nothing suppressed.
    audit = subprocess.run(
        [
            _tool("zizmor"),
            *("--offline", "--no-progress", "--no-config", "--no-ignores", "--persona", "pedantic"),
            *("--color", "never", "--format", "plain", str(RELEASE)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings to report" in audit.stdout


def test_lint_workflows_covers_every_workflow() -> None:
    """.ci/lint-workflows lints the whole folder, so release.yml is in the test command's lint too."""
    text = (ROOT / ".ci" / "lint-workflows").read_text(encoding="utf-8")
    assert "workflows=(.github/workflows/*.yml .github/workflows/*.yaml)" in text
    assert '"${workflows[@]}"' in text
    assert ".github/workflows action.yml" in text


# ----------------------------------------------------------------------------- version, changelog, action


def test_version_has_one_source() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == "symbiote-cli"
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "symbiote_cli.__version__"}
    assert rc.package_version() == VERSION
    assert re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)", VERSION)
    dev = project["project"]["optional-dependencies"]["dev"]
    assert any(spec.startswith("build>=") for spec in dev)
    assert any(spec.startswith("twine>=") for spec in dev)


def test_changelog_top_section_is_the_package_version() -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "Keep a Changelog" in text
    sections = rc.changelog_sections(text)
    assert sections[0].name == "Unreleased"
    top = rc.released_sections(text)[0]
    assert top.name == VERSION
    assert top.date is not None
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", top.date)
    rc.check_changelog(text, VERSION)
    # Every released section is a version, newest first.
    versions = [rc.parse_tag(f"v{section.name}") for section in rc.released_sections(text)]
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)


@pytest.mark.parametrize(
    ("changelog", "message"),
    [
        ("## [Unreleased]\n\n## [1.0.0]\n- x\n", r"\[1\.0\.0\] heading has no date"),
        ("## [1.0.0] - 1 Dec 2026\n- x\n", "heading '## \\[1.0.0\\] - 1 Dec 2026' is not"),
        ("## [1.0.0] - 2026-13-01\n- x\n", "date '2026-13-01' is not YYYY-MM-DD"),
        ("## [1.0.0] - 2026-12-01\n\n## [0.9.0] - 2026-11-01\n- x\n", r"\[1\.0\.0\] section is empty"),
        ("## [0.9.0] - 2026-11-01\n- x\n", r"top released section is \[0\.9\.0\], not \[1\.0\.0\]"),
        ("## [Unreleased]\n- x\n", r"top released section is \[none\]"),
        ("## 1.0.0 - 2026-12-01\n- x\n", "is not '## \\[X.Y.Z\\] - YYYY-MM-DD'"),
    ],
)
def test_changelog_mistakes_are_named(changelog: str, message: str) -> None:
    with pytest.raises(rc.ReleaseError, match=message):
        rc.check_changelog(changelog, "1.0.0")


def test_release_notes_are_the_section_without_its_heading_or_links() -> None:
    text = (
        "# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.1.0] - 2026-12-02\n\n### Fixed\n\n- a\n\n"
        "## [1.0.0] - 2026-12-01\n\n- first\n\n[1.1.0]: https://example.invalid/compare\n"
    )
    assert rc.release_notes(text, "1.1.0") == "### Fixed\n\n- a\n"
    assert rc.release_notes(text, "1.0.0") == "- first\n"
    with pytest.raises(rc.ReleaseError, match=r"no '## \[2\.0\.0\] - YYYY-MM-DD' section"):
        rc.release_notes(text, "2.0.0")


def test_major_tag_decision() -> None:
    remote = "a\trefs/tags/v1.0.0\nb\trefs/tags/v1.2.0\nc\trefs/tags/v1\nd\trefs/tags/v2.0.0\ne\trefs/tags/vX\n"
    assert rc.major_tag("v1.2.0", remote) == "v1"
    assert rc.major_tag("v1.3.0", remote) == "v1"  # the pushed tag may not be listed yet
    assert rc.major_tag("v1.1.5", remote) == ""
    assert rc.major_tag("v2.0.1", remote) == "v2"
    assert rc.major_tag("v3.0.0", "") == "v3"


def test_error_annotation_is_one_escaped_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert rc._fail("bad\n::warning::x 100%") == 1
    assert capsys.readouterr().out == "::error title=Release check::bad%0A::warning::x 100%25\n"
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert rc._fail("bad\nthing") == 1
    assert capsys.readouterr().err == "release_check: bad thing\n"


def test_action_installs_its_own_checkout_so_a_tag_runs_that_release() -> None:
    """``uses: OWNER/symbiote@v1`` gets the commit v1 points at; the action must install that, not the index."""
    action = (ROOT / "action.yml").read_text(encoding="utf-8")
    rc.check_action(action)
    install = '"$bin/python" -m pip install --disable-pip-version-check --quiet "$GITHUB_ACTION_PATH"'
    assert install in action
    for replacement, message in (
        ('"$bin/python" -m pip install --quiet symbiote-cli', "installs symbiote-cli"),
        ('"$bin/python" -m pip install "symbiote-cli==1.0.0"', 'installs "symbiote-cli==1.0.0"'),
        (f"{install} symbiote-cli", "and nothing else"),
        (f"{install}\n        pip install rich", "expected one 'pip install' line, found 2"),
    ):
        with pytest.raises(rc.ReleaseError, match=re.escape(message)):
            rc.check_action(action.replace(install, replacement))


def test_release_check_refuses_an_action_that_installs_something_else(tmp_path: Path) -> None:
    """The tag check covers action.yml: copy the files it reads, change the action, run the check."""
    tree = tmp_path / "tree"
    for name in ("scripts/release_check.py", "symbiote_cli/__init__.py", "CHANGELOG.md", "action.yml"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, tree / name)
    action = tree / "action.yml"
    action.write_text(
        action.read_text(encoding="utf-8").replace('"$GITHUB_ACTION_PATH"', "symbiote-cli"), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    result = subprocess.run(
        [sys.executable, str(tree / "scripts" / "release_check.py"), "check", TAG],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("release_check: action.yml installs symbiote-cli: it must install")


# ----------------------------------------------------------------------------- README


def test_readme_install_and_release_instructions() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)
    # It still opens with the two set-up commands; the pipx route follows before anything else.
    assert blocks[0] == (
        "bash",
        "python3 -m venv .venv && .venv/bin/pip install . && GH_PAT=<your token> .venv/bin/symbiote poll\n",
    )
    assert blocks[1] == (
        "bash",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m pytest -q\n",
    )
    pipx = ("bash", "pipx install symbiote-cli && GH_PAT=<your token> symbiote poll\n")
    assert pipx in blocks
    assert text.index(pipx[1]) < text.index("\n## How it works")
    releasing = text.split("\n## Releasing\n", 1)[1].split("\n## ", 1)[0]
    assert "python scripts/release_check.py check vX.Y.Z && git tag vX.Y.Z && git push origin vX.Y.Z" in releasing
    assert "trusted publisher" in releasing
    assert "`pypi`" in releasing
    assert "git tag -f v1 vX.Y.Z && git push -f origin v1" in releasing
