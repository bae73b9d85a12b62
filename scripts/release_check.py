"""Release checks run by .github/workflows/release.yml, and by tests/test_release.py the same way.

    python scripts/release_check.py check v1.2.3           # tag = __version__, CHANGELOG section, action.yml
    python scripts/release_check.py dist v1.2.3 dist       # the built sdist and wheel carry that version
    python scripts/release_check.py cli v1.2.3 BIN/symbiote  # an installed CLI reports it and shows --help
    python scripts/release_check.py notes v1.2.3           # the CHANGELOG section, for the release notes
    git ls-remote --tags --refs origin | python scripts/release_check.py major v1.2.3
                                                           # "v1" when v1.2.3 is the newest 1.x, else ""

The version is written once, in ``symbiote_cli/__init__.py`` (pyproject.toml reads it), so a tag that
disagrees with it is a mistake in the tag or a forgotten bump: either way nothing may be published. A
failed check prints one line (an error annotation inside GitHub Actions) and exits 1; bad usage exits 2.
Standard library only: it runs before anything is installed, on the runner's own Python too.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "symbiote-cli"
MODULE = "symbiote_cli"
VERSION_FILE = ROOT / MODULE / "__init__.py"
CHANGELOG = ROOT / "CHANGELOG.md"
ACTION = ROOT / "action.yml"
ACTION_SOURCE = '"$GITHUB_ACTION_PATH"'

_TAG = re.compile(r"v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_HEADING = re.compile(r"## \[(?P<name>[^\]]+)\](?:\s+-\s+(?P<date>\S+))?\s*")
_LINK_REFERENCE = re.compile(r"\[[^\]]+\]:\s+\S+")


class ReleaseError(Exception):
    """A check failed: the message says what and how to fix it, in one line."""


@dataclass(frozen=True)
class Section:
    """One ``## [name] - date`` section of the changelog."""

    name: str
    date: str | None
    body: str


def parse_tag(tag: str) -> tuple[int, int, int]:
    """``vX.Y.Z`` (no leading zeros, nothing after) to its numbers."""
    match = _TAG.fullmatch(tag)
    if match is None:
        raise ReleaseError(f"tag {tag!r} is not a release tag: expected vX.Y.Z, e.g. v1.2.3")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def version_of(tag: str) -> str:
    """The version a release tag names (``v1.2.3`` -> ``1.2.3``)."""
    parse_tag(tag)
    return tag[1:]


def package_version(path: Path = VERSION_FILE) -> str:
    """``__version__`` as written in the package, read without importing it (no dependencies needed)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise ReleaseError(f"{_shown(path)} has no __version__ = '...' string")


def check_tag(tag: str, version: str) -> None:
    """The tag must name exactly the package's version."""
    if version_of(tag) != version:
        raise ReleaseError(
            f"tag {tag} does not match the package version {version} ({_shown(VERSION_FILE)}): "
            f"tag v{version} instead, or bump __version__ and CHANGELOG.md and tag again"
        )


def changelog_sections(text: str) -> list[Section]:
    """The ``## [...]`` sections in order, each with its text up to the next ``## `` heading."""
    sections: list[Section] = []
    current: tuple[str, str | None] | None = None
    lines: list[str] = []

    def close() -> None:
        if current is not None:
            body = "\n".join(line for line in lines if not _LINK_REFERENCE.fullmatch(line.strip()))
            sections.append(Section(current[0], current[1], body.strip()))

    for line in text.splitlines():
        if line.startswith("## "):
            close()
            heading = _HEADING.fullmatch(line)
            if heading is None:
                raise ReleaseError(f"CHANGELOG.md: heading {line!r} is not '## [X.Y.Z] - YYYY-MM-DD'")
            current = (heading["name"], heading["date"])
            lines = []
        elif current is not None:
            lines.append(line)
    close()
    return sections


def released_sections(text: str) -> list[Section]:
    """Every section but ``Unreleased``, newest first as the file is written."""
    return [section for section in changelog_sections(text) if section.name.lower() != "unreleased"]


def release_notes(text: str, version: str) -> str:
    """The changelog text of one version: a dated, non-empty section, or an error saying what is missing."""
    for section in released_sections(text):
        if section.name != version:
            continue
        if section.date is None:
            raise ReleaseError(f"CHANGELOG.md: the [{version}] heading has no date ('## [{version}] - YYYY-MM-DD')")
        try:
            dt.date.fromisoformat(section.date)
        except ValueError:
            raise ReleaseError(f"CHANGELOG.md: the [{version}] date {section.date!r} is not YYYY-MM-DD") from None
        if not section.body:
            raise ReleaseError(f"CHANGELOG.md: the [{version}] section is empty")
        return section.body + "\n"
    raise ReleaseError(f"CHANGELOG.md has no '## [{version}] - YYYY-MM-DD' section: move the Unreleased notes there")


def check_changelog(text: str, version: str) -> None:
    """The newest released section is this version's, and it is complete."""
    released = released_sections(text)
    if not released or released[0].name != version:
        top = released[0].name if released else "none"
        raise ReleaseError(f"CHANGELOG.md: the top released section is [{top}], not [{version}]")
    release_notes(text, version)


def check_action(text: str) -> None:
    """action.yml installs the checkout it runs from, so ``@v1`` runs exactly the code of the release v1 names."""
    installs = [line.strip() for line in text.splitlines() if re.search(r"\bpip\s+install\b", line)]
    if len(installs) != 1:
        raise ReleaseError(f"action.yml: expected one 'pip install' line, found {len(installs)}")
    after = re.split(r"\bpip\s+install\b", installs[0], maxsplit=1)[1]
    targets = [word for word in shlex.split(after, posix=False) if not word.startswith("-")]
    if targets != [ACTION_SOURCE]:
        raise ReleaseError(
            f"action.yml installs {' '.join(targets) or 'nothing'}: it must install {ACTION_SOURCE} "
            "(its own checkout at the release tag) and nothing else"
        )


def _metadata(text: str, where: str) -> tuple[str, str]:
    headers = HeaderParser().parsestr(text)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise ReleaseError(f"{where}: metadata without Name or Version")
    return re.sub(r"[-_.]+", "-", name).lower(), version


def distribution_metadata(path: Path) -> tuple[str, str]:
    """(normalised name, version) from a wheel's METADATA or an sdist's PKG-INFO."""
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            found = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(found) != 1:
                raise ReleaseError(f"{path.name}: expected one .dist-info/METADATA, found {len(found)}")
            return _metadata(wheel.read(found[0]).decode("utf-8"), path.name)
    with tarfile.open(path, "r:gz") as sdist:
        found = [n for n in sdist.getnames() if re.fullmatch(r"[^/]+/PKG-INFO", n)]
        member = sdist.extractfile(found[0]) if len(found) == 1 else None
        if member is None:
            raise ReleaseError(f"{path.name}: expected one top-level PKG-INFO, found {len(found)}")
        return _metadata(member.read().decode("utf-8"), path.name)


def check_dist(tag: str, directory: Path) -> list[Path]:
    """Exactly one wheel and one sdist, both of this package at the tag's version."""
    version = version_of(tag)
    wheels = sorted(directory.glob("*.whl"))
    sdists = sorted(directory.glob("*.tar.gz"))
    others = sorted(p.name for p in directory.iterdir() if p not in wheels and p not in sdists)
    if len(wheels) != 1 or len(sdists) != 1 or others:
        names = ", ".join(sorted(p.name for p in directory.iterdir())) or "nothing"
        raise ReleaseError(f"{_shown(directory)} must hold one wheel and one sdist, it holds: {names}")
    stem = f"{MODULE}-{version}"
    for path in (*wheels, *sdists):
        if not (path.name.startswith(f"{stem}-") or path.name == f"{stem}.tar.gz"):
            raise ReleaseError(f"{path.name} is not named for {PACKAGE} {version}")
        name, built = distribution_metadata(path)
        if name != PACKAGE or built != version:
            raise ReleaseError(f"{path.name} holds {name} {built}, but the tag {tag} is {PACKAGE} {version}")
    return [*wheels, *sdists]


def check_cli(tag: str, executable: str) -> None:
    """An installed ``symbiote`` reports the tag's version and shows its help."""
    version = version_of(tag)
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb"}
    shown = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=120, env=env, check=False)
    if shown.returncode != 0 or shown.stdout.strip() != f"symbiote {version}":
        said = (shown.stdout.strip() or shown.stderr.strip() or f"exit {shown.returncode}").splitlines()[-1]
        raise ReleaseError(f"the installed CLI says {said!r} to --version, expected 'symbiote {version}'")
    helped = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=120, env=env, check=False)
    if helped.returncode != 0 or "Usage" not in helped.stdout or "poll" not in helped.stdout:
        raise ReleaseError(f"the installed CLI's --help failed (exit {helped.returncode})")


def major_tag(tag: str, ls_remote: str) -> str:
    """``vN`` when this release is the newest ``vN.*.*`` on the remote (so the tag may move), else ''.

    A fix released for an older line (v1.2.4 after v1.3.0) must not pull ``v1`` back.
    """
    released = parse_tag(tag)
    newest = released
    for line in ls_remote.splitlines():
        ref = line.split()[-1] if line.strip() else ""
        name = ref.removeprefix("refs/tags/")
        if _TAG.fullmatch(name):
            other = parse_tag(name)
            if other[0] == released[0]:
                newest = max(newest, other)
    return f"v{released[0]}" if newest == released else ""


def _shown(path: Path) -> str:
    """A path as the repository names it."""
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def _escape(message: str) -> str:
    """Workflow-command data escaping, so a message is one annotation and can inject nothing."""
    return message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _fail(message: str) -> int:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        sys.stdout.write(f"::error title=Release check::{_escape(message)}\n")
    else:
        sys.stderr.write(f"release_check: {' '.join(message.split())}\n")
    return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="release_check.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="tag = __version__; CHANGELOG section; action.yml installs itself")
    check.add_argument("tag")
    dist = commands.add_parser("dist", help="the built wheel and sdist carry the tag's version")
    dist.add_argument("tag")
    dist.add_argument("directory", type=Path)
    cli = commands.add_parser("cli", help="an installed symbiote reports the tag's version and shows --help")
    cli.add_argument("tag")
    cli.add_argument("executable")
    notes = commands.add_parser("notes", help="print the CHANGELOG section of the tag's version")
    notes.add_argument("tag")
    major = commands.add_parser("major", help="print vN if the tag is the newest vN.*.* in `git ls-remote` on stdin")
    major.add_argument("tag")
    return parser


def main(argv: list[str]) -> int:
    """Run one check; 0 when it passes, 1 with a one-line reason when it does not."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            version = package_version()
            check_tag(args.tag, version)
            check_changelog(CHANGELOG.read_text(encoding="utf-8"), version)
            check_action(ACTION.read_text(encoding="utf-8"))
            sys.stdout.write(f"{args.tag}: {PACKAGE} {version}, CHANGELOG.md section and action.yml are ready\n")
        elif args.command == "dist":
            built = check_dist(args.tag, args.directory)
            sys.stdout.write(f"{args.tag}: {', '.join(p.name for p in built)}\n")
        elif args.command == "cli":
            check_cli(args.tag, args.executable)
            sys.stdout.write(f"{args.tag}: the installed CLI is symbiote {version_of(args.tag)}\n")
        elif args.command == "notes":
            sys.stdout.write(release_notes(CHANGELOG.read_text(encoding="utf-8"), version_of(args.tag)))
        else:
            sys.stdout.write(major_tag(args.tag, sys.stdin.read()) + "\n")
    except ReleaseError as error:
        return _fail(str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
