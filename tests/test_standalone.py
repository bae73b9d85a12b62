"""The repository stands alone: a copy of it with nothing beside it collects its tests.

On the team's machines and in CI a folder of reference material sits next to the
repository; a user's clone has none. Whatever the tests read comes from ``tests/data``
(through ``tests/openapi.py:data_dir()``), so:

* the tracked and untracked (not ignored) files, copied into an empty temporary folder,
  collect with this interpreter, with exit status 0 and no error, importing the copy's own
  ``symbiote_cli`` and ``tests`` modules;
* the same copy without ``tests/data`` fails to collect, naming the copy's ``tests/data``:
  collection does read the data, and from the copy;
* no file under tests/, benchmarks/, symbiote_cli/ or scripts/ names a sibling ``shared``
  folder or builds a path to one (a read inside a test body would escape collect-only).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "benchmarks", "symbiote_cli", "scripts")
# Written so that these lines do not match themselves.
SIBLING_TEXT = re.compile(r"\.\.[/\\]+shared\b")  # a parent-relative path to it, in any file
SIBLING_LITERAL = re.compile(r"""["']shared["']""")  # the bare word as a string: a path part, in Python
COLLECT = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
# What the copy imports: its own package (not the editable install's) and its own tests/data.
WHICH = (
    "import sys; sys.path.insert(0, 'tests'); import openapi, symbiote_cli; "
    "print(symbiote_cli.__file__, openapi.data_dir())"
)
COLLECTION_ERROR = re.compile(r"^ERROR\b|errors? during collection|^E\s", re.MULTILINE)


def _files() -> list[str]:
    try:
        done = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("git is not installed")
    if done.returncode != 0:
        pytest.skip("not a git checkout: " + done.stderr.decode(errors="replace").strip())
    return [name for name in done.stdout.decode().split("\0") if name]


def _copy(files: list[str], dest: Path) -> Path:
    for name in files:
        source = ROOT / name
        if not source.is_file():  # deleted in the work tree, or a submodule
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


def _env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update({"PYTHONPATH": str(clone), "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def _run(command: list[str], clone: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=clone,
        env=_env(clone),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _output(process: subprocess.Popen[str]) -> str:
    try:
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


def test_a_copy_with_nothing_beside_it_collects(tmp_path: Path) -> None:
    files = _files()
    assert "tests/data/README.md" in files, "tests/data is neither tracked nor addable"
    clone = _copy(files, tmp_path / "alone" / ROOT.name)
    bare = _copy(files, tmp_path / "bare" / ROOT.name)
    shutil.rmtree(bare / "tests" / "data")
    for copy in (clone, bare):
        assert sorted(p.name for p in copy.parent.iterdir()) == [ROOT.name]  # nothing beside it

    # The three runs share two cores: start them together.
    which = _run([sys.executable, "-c", WHICH], clone)
    collect = _run(COLLECT, clone)
    without_data = _run([*COLLECT, "-x"], bare)

    out = _output(which)
    assert which.returncode == 0, out
    package, data = out.split()
    assert Path(package).is_relative_to(clone), f"the copy imported another symbiote_cli: {package}"
    assert Path(data) == clone / "tests" / "data", data

    out = _output(collect)
    assert collect.returncode == 0, out[-4000:]
    assert not COLLECTION_ERROR.search(out), out[-4000:]
    assert re.search(r"^\d+ tests collected", out, re.MULTILINE), out[-4000:]

    out = _output(without_data)
    assert without_data.returncode != 0, "collection passed without tests/data: " + out[-2000:]
    assert str(bare / "tests" / "data") in out, out[-4000:]


def _scanned_files() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found.append(path)
    return found


def test_no_file_reads_outside_the_repository() -> None:
    offenders = []
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary data
        for number, line in enumerate(text.splitlines(), start=1):
            if SIBLING_TEXT.search(line) or (path.suffix == ".py" and SIBLING_LITERAL.search(line)):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == [], "files that reach for a folder beside the repository:\n" + "\n".join(offenders)


def test_the_scan_finds_what_it_looks_for() -> None:
    q, qq = "'", '"'  # quotes kept apart from the word, so this file does not match itself
    bad = (
        f"SPEC = Path(__file__).resolve().parents[2] / {qq}shared{qq} / {qq}github{qq}",
        "see " + ".." + "/shared/ubiquity-os/README.md",
        f"os.path.join(ROOT, '..', {q}shared{q}, 'x.json')",
    )
    for line in bad:
        assert SIBLING_TEXT.search(line) or SIBLING_LITERAL.search(line), line
    fine = ('view.read_json("shared/counter.json")', "a cache shared by the worker and the poller")
    for line in fine:
        assert not SIBLING_TEXT.search(line), line
        assert not SIBLING_LITERAL.search(line), line


# -------------------------------------------------------------------------- the data it ships


def test_every_data_file_is_documented() -> None:
    data = ROOT / "tests" / "data"
    readme = (data / "README.md").read_text(encoding="utf-8")
    undocumented = [
        str(path.relative_to(data))
        for path in sorted(data.rglob("*"))
        if path.is_file()
        and path.name != "README.md"
        and not all(part in readme for part in path.relative_to(data).parts)
    ]
    assert undocumented == [], "tests/data/README.md does not say where these come from: " + ", ".join(undocumented)


def test_the_openapi_subset_is_what_the_script_cuts() -> None:
    """The shipped subset has exactly the script's PATHS, so a path added there is also cut."""
    spec_ = importlib.util.spec_from_file_location("openapi_subset", ROOT / "scripts" / "openapi_subset.py")
    assert spec_ is not None
    assert spec_.loader is not None
    script = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(script)
    subset = json.loads((ROOT / "tests" / "data" / "github" / "openapi-subset.json").read_text(encoding="utf-8"))
    assert list(subset["paths"]) == script.PATHS
    assert subset["info"]["x-subset-of"] == "api.github.com.json from @octokit/openapi " + subset["info"]["version"]
    assert "get" in subset["paths"]["/notifications"]
    assert "patch" in subset["paths"]["/notifications/threads/{thread_id}"]
