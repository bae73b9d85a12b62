"""Generate the command reference (Markdown) from the CLI's own ``--help``.

    python scripts/gen_cli_reference.py            # print the reference
    python scripts/gen_cli_reference.py --write    # update the file that holds it
    python scripts/gen_cli_reference.py --check    # exit 1 when that file is stale

The reference sits between ``<!-- cli-reference:start -->`` and
``<!-- cli-reference:end -->`` in README.md when README.md has those markers,
else in docs/cli-reference.md. Help is rendered by Typer's CliRunner at a fixed
width without colour, so the output is the same on every machine;
tests/test_readme_reference.py keeps the file in sync.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"
WIDTH = 100
README = ROOT / "README.md"
FALLBACK = ROOT / "docs" / "cli-reference.md"
_FALLBACK_HEAD = (
    "# Command reference\n\n"
    "Generated from the CLI's `--help` by `scripts/gen_cli_reference.py`; do not edit by hand.\n\n"
)


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group, depth first, in the order the help lists them."""
    yield path, group
    if hasattr(group, "list_commands"):  # a group (Typer ships its own click)
        ctx = group.context_class(group, info_name=path[-1] if path else "symbiote")
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None and not getattr(command, "hidden", False):
                yield from _commands(command, (*path, name))


def help_text(args: list[str]) -> str:
    """``symbiote ARGS --help`` as plain text at a fixed width."""
    from typer import rich_utils  # noqa: PLC0415  imported after the caller fixed the terminal width (COLUMNS)
    from typer.testing import CliRunner  # noqa: PLC0415  imported after the caller fixed the terminal width (COLUMNS)

    from symbiote_cli.cli.app import app  # noqa: PLC0415  imported after the caller fixed the terminal width (COLUMNS)

    saved = (rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM)
    rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = WIDTH, False, None
    try:
        env = {"NO_COLOR": "1", "COLUMNS": str(WIDTH), "TERM": "dumb", "TERMINAL_WIDTH": str(WIDTH)}
        result = CliRunner().invoke(app, [*args, "--help"], prog_name="symbiote", env=env, color=False)
    finally:
        rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = saved
    if result.exit_code != 0:
        raise RuntimeError(f"symbiote {' '.join(args)} --help failed: {result.output}")
    lines = [line.rstrip() for line in result.output.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines)


def command_paths(*, groups: bool = True) -> list[tuple[str, ...]]:
    """Every command's path (``("store", "gc")``); without ``groups``, only runnable commands."""
    import typer  # noqa: PLC0415  imported after the caller fixed the terminal width (COLUMNS)

    from symbiote_cli.cli.app import app  # noqa: PLC0415  imported after the caller fixed the terminal width (COLUMNS)

    return [
        path
        for path, command in _commands(typer.main.get_command(app))
        if groups or not hasattr(command, "list_commands")
    ]


def generate() -> str:
    """The reference: one section per command, its help in a text block."""
    parts = []
    for path in command_paths():
        title = " ".join(("symbiote", *path))
        parts.append(f"### `{title}`\n\n```text\n{help_text(list(path))}\n```\n")
    return "\n".join(parts)


def target() -> Path:
    """README.md when it has the markers, else docs/cli-reference.md."""
    if README.is_file():
        text = README.read_text(encoding="utf-8")
        if START in text and END in text:
            return README
    return FALLBACK


def block(reference: str) -> str:
    return f"{START}\n{reference}{END}"


def current_block(path: Path) -> str | None:
    """The marked block now in ``path`` (markers included), or None."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def write(reference: str) -> Path:
    path = target()
    new = block(reference)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        old = current_block(path)
        text = text.replace(old, new) if old is not None else text.rstrip("\n") + "\n\n" + new + "\n"
    else:
        text = _FALLBACK_HEAD + new + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    os.environ.setdefault("NO_COLOR", "1")
    sys.path.insert(0, str(ROOT))
    reference = generate()
    if "--write" in argv:
        path = write(reference)
        sys.stdout.write(f"wrote the command reference to {path.relative_to(ROOT)}\n")
        return 0
    if "--check" in argv:
        path = target()
        if current_block(path) != block(reference):
            sys.stderr.write(f"{path.relative_to(ROOT)} is stale: run python scripts/gen_cli_reference.py --write\n")
            return 1
        return 0
    sys.stdout.write(reference)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
