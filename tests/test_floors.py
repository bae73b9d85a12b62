"""The `>=` floors in pyproject.toml are the versions the lowest-versions run installs and tests.

CI's .ci/lowest-versions installs every direct dependency at the version pinned in
.ci/lowest-constraints.txt; these checks keep those pins equal to the floors (so a floor cannot be
raised or lowered without the run proving it) and keep the run wired into CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / ".ci" / "lowest-constraints.txt"
SCRIPT = ROOT / ".ci" / "lowest-versions"
CI_RUN = ROOT / ".ci" / "run"
MAIN_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m pytest -q"

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?$")
RELEASE = re.compile(r"^\d+(?:\.\d+)*$")


def canonical(name: str) -> str:
    """PEP 503 name, so `PyYAML`, `pyyaml` and `py_yaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_requirements(pyproject: dict[str, object]) -> list[str]:
    """Runtime dependencies plus the `dev` extra: everything the lowest-versions run installs by name."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    return [*project["dependencies"], *project["optional-dependencies"]["dev"]]


def floors(requirements: list[str]) -> tuple[dict[str, str], list[str]]:
    """Each requirement's `>=` version by canonical name, and the requirements that have no usable floor."""
    found: dict[str, str] = {}
    problems = []
    for requirement in requirements:
        match = REQUIREMENT.match(requirement)
        if match is None:
            problems.append(f"{requirement!r}: not a plain `name>=version` requirement")
            continue
        name, specifiers = match.groups()
        lower = [s.strip()[2:].strip() for s in specifiers.split(",") if s.strip().startswith(">=")]
        if len(lower) != 1 or not RELEASE.match(lower[0]):
            problems.append(f"{requirement!r}: needs exactly one `>=` floor on a release number")
            continue
        found[canonical(name)] = lower[0]
    return found, problems


def pins(text: str) -> tuple[dict[str, str], dict[str, bool]]:
    """`name==version` lines by canonical name, and whether each carries a `#` comment."""
    pinned: dict[str, str] = {}
    commented: dict[str, bool] = {}
    for line in text.splitlines():
        body, hash_, comment = line.partition("#")
        body = body.strip()
        if not body:
            continue
        name, sep, version = body.partition("==")
        assert sep, f"constraint {body!r} is not `name==version`"
        key = canonical(name.strip())
        assert key not in pinned, f"{name.strip()} is pinned twice"
        pinned[key] = version.strip()
        commented[key] = bool(hash_ and comment.strip())
    return pinned, commented


def floor_problems(pyproject_text: str, constraints_text: str) -> list[str]:
    """Every way pyproject's floors and the constraints file disagree (empty when they agree)."""
    wanted, problems = floors(direct_requirements(tomllib.loads(pyproject_text)))
    pinned, commented = pins(constraints_text)
    for name, floor in wanted.items():
        if name not in pinned:
            problems.append(f"{name}: floor {floor} is not pinned in {CONSTRAINTS.name}")
        elif pinned[name] != floor:
            problems.append(f"{name}: floor {floor} but {CONSTRAINTS.name} pins {pinned[name]}")
    # A pin of a package that is not a direct dependency is a transitive pin: it must say why.
    problems.extend(
        f"{name}: transitive pin without a `# why` comment"
        for name in pinned
        if name not in wanted and not commented[name]
    )
    return problems


def test_every_direct_dependency_has_a_floor_pinned_in_the_constraints() -> None:
    assert CONSTRAINTS.is_file(), "missing .ci/lowest-constraints.txt"
    problems = floor_problems(PYPROJECT.read_text(encoding="utf-8"), CONSTRAINTS.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


def test_the_pyproject_floors_cover_runtime_and_dev() -> None:
    """Both lists are read: a runtime and a dev dependency each show up among the floors."""
    wanted, problems = floors(direct_requirements(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))))
    assert problems == []
    assert {"pygithub", "typer", "pydantic-settings", "pytest", "schemathesis"} <= set(wanted)


def test_the_check_catches_drift_and_missing_floors() -> None:
    """The comparison above is not vacuous: the old unfloored/untrue specifiers and a drifted pin fail it."""
    pyproject = (
        '[project]\ndependencies = ["PyGithub>=2.3", "rich"]\n[project.optional-dependencies]\ndev = ["ruff~=0.6"]\n'
    )
    problems = floor_problems(pyproject, "PyGithub==2.10.0\nclick==8.1.8\n")
    assert any("pygithub: floor 2.3 but" in p and "pins 2.10.0" in p for p in problems), problems
    assert any(p.startswith("'rich'") for p in problems), problems
    assert any(p.startswith("'ruff~=0.6'") for p in problems), problems
    assert any(p.startswith("click: transitive pin") for p in problems), problems
    assert floor_problems(pyproject.replace(', "rich"', "").replace("~=", ">="), "PyGithub==2.3\nruff==0.6\n") == []
    assert floor_problems('[project]\ndependencies = ["a>=1"]\n[project.optional-dependencies]\ndev = []\n', "") == [
        f"a: floor 1 is not pinned in {CONSTRAINTS.name}"
    ]
    # A transitive pin with its reason is allowed; names match across case, `_`, `-` and `.`.
    ok = (
        '[project]\ndependencies = ["PyYAML>=6.0"]\n[project.optional-dependencies]\ndev = ["typing_extensions>=4.0"]\n'
    )
    pinned = "pyyaml==6.0\nTyping.Extensions==4.0\nclick==8.1.8  # old typer breaks on click 8.2\n"
    assert floor_problems(ok, pinned) == []


def test_ci_runs_the_lowest_versions_script_after_the_main_command() -> None:
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert MAIN_COMMAND in lines, "the README's test command must stay verbatim in .ci/run"
    calls = [i for i, line in enumerate(lines) if not line.startswith("#") and ".ci/lowest-versions" in line]
    assert calls, ".ci/run does not call .ci/lowest-versions"
    assert calls[0] > lines.index(MAIN_COMMAND)
    assert "set -euo pipefail" in lines, ".ci/run must fail when the lowest-versions run fails"
    # CI gives the run no stdin; the call must not wait on one.
    assert lines[calls[0]].endswith("</dev/null")


def _run_ci_with_stubs(tmp_path: Path, lowest_status: int) -> tuple[int, list[str]]:
    """Run the real .ci/run with python3, the venv's tools and .ci/lowest-versions stubbed to log their calls."""
    shutil.copy2(CI_RUN, tmp_path / ".ci" / "run")
    log = tmp_path / "calls"
    log.unlink(missing_ok=True)
    stub = '#!/usr/bin/env bash\necho "{name}" >> "{log}"\nexit {status}\n'
    tools = {
        tmp_path / "bin" / "python3": 0,
        tmp_path / ".venv" / "bin" / "pip": 0,
        tmp_path / ".venv" / "bin" / "python": 0,
        tmp_path / ".ci" / "lowest-versions": lowest_status,
    }
    for path, status in tools.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stub.format(name=path.name, log=log, status=status), encoding="utf-8")
        path.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "CI": "true"}
    result = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")],
        stdin=subprocess.DEVNULL,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, log.read_text(encoding="utf-8").split()


def test_ci_run_fails_when_the_lowest_versions_run_fails(tmp_path: Path) -> None:
    (tmp_path / ".ci").mkdir()
    status, calls = _run_ci_with_stubs(tmp_path, lowest_status=3)
    assert calls == ["python3", "pip", "python", "lowest-versions"]
    assert status != 0
    status, calls = _run_ci_with_stubs(tmp_path, lowest_status=0)
    assert status == 0


def test_lowest_versions_script_installs_the_constraints_in_its_own_venv() -> None:
    text = SCRIPT.read_text(encoding="utf-8")
    assert SCRIPT.stat().st_mode & 0o111
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "-e '.[dev]' -c \"$constraints\"" in text
    assert 'constraints=".ci/lowest-constraints.txt"' in text
    assert ".venv-lowest" in text
    assert "-m pytest" in text
    for covered in ("test_e2e_cli.py", "test_ghclient.py", "test_worker.py", "test_settings.py"):
        assert f"tests/{covered}" in text
        assert (ROOT / "tests" / covered).is_file()
    assert ".venv-lowest/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
