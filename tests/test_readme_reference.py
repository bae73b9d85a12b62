"""The command reference is generated from the CLI's own help and kept in sync.

It lives between ``<!-- cli-reference:start -->`` and ``<!-- cli-reference:end -->``
in README.md when README.md has those markers, else in docs/cli-reference.md.
Regenerate with ``python scripts/gen_cli_reference.py --write``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_reference", module)
    spec.loader.exec_module(module)
    return module


def test_reference_matches_the_cli_help(gen: ModuleType) -> None:
    path = gen.target()
    text = path.read_text(encoding="utf-8")
    assert text.count(gen.START) == 1
    assert text.count(gen.END) == 1
    assert gen.current_block(path) == gen.block(gen.generate()), (
        f"{path.relative_to(ROOT)} is stale: run python scripts/gen_cli_reference.py --write"
    )


def test_reference_covers_every_command(gen: ModuleType) -> None:
    reference = gen.generate()
    paths = gen.command_paths()
    assert ("rules", "check") in paths
    assert ("doctor",) in paths
    for path in paths:
        assert f"### `{' '.join(('symbiote', *path))}`" in reference


def test_every_command_help_has_an_example(gen: ModuleType) -> None:
    missing = [" ".join(path) for path in gen.command_paths(groups=False) if "Example" not in gen.help_text(list(path))]
    assert not missing, f"commands whose --help has no example: {missing}"


def test_help_is_plain_text_at_a_fixed_width(gen: ModuleType) -> None:
    text = gen.help_text(["rules", "explain"])
    assert "\x1b[" not in text
    assert max(len(line) for line in text.splitlines()) <= gen.WIDTH
    assert "[default: the actor]" in text
