"""The package's folders are its layers: each may import only the layers below it (docs/architecture.md).

Every ``import`` in every module counts, including those inside functions and under ``TYPE_CHECKING``,
so the structure cannot rot silently. A new module must live in one of the layers named here.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "symbiote_cli"

# layer -> the layers it may import (besides itself). Order is bottom-up.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "github": {"core"},
    "flows": {"core", "storage", "github"},
    "settings": {"core"},
    "wiring": {"core", "storage", "github", "flows", "settings"},
    "worker": {"core", "storage", "github", "flows", "settings", "wiring"},
    "cli": {"core", "storage", "github", "flows", "settings", "wiring", "worker"},
    "package": {"cli"},  # __init__ / __main__
}

# Third-party modules a pure layer must not touch: network, git, web framework, terminal.
IO_MODULES = {"github", "git", "requests", "urllib3", "fastapi", "starlette", "uvicorn", "typer", "rich", "httpx"}
PURE_LAYERS = {"core"}


def layer_of(module: str) -> str:
    """``symbiote_cli.core.models`` -> ``core``; top-level modules are their own layer."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in {"__init__", "__main__"}:
        return "package"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module imported anywhere in the file, as absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = me.split(".")
                if path.name != "__init__.py":
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            # ``from symbiote_cli.storage import layout`` imports the module ``symbiote_cli.storage.layout``.
            folder = PACKAGE.parent.joinpath(*base.split("."))
            if base.startswith("symbiote_cli") and folder.is_dir():
                found.extend(
                    (node.lineno, f"{base}.{alias.name}")
                    for alias in node.names
                    if (folder / f"{alias.name}.py").is_file() or (folder / alias.name).is_dir()
                )
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_known_layer() -> None:
    unknown = [module_name(p) for p in MODULES if layer_of(module_name(p)) not in ALLOWED]
    assert not unknown, f"modules outside every layer (put them in one): {unknown}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_go_down(path: Path) -> None:
    me = module_name(path)
    mine = layer_of(me)
    bad = []
    for line, target in imports(path):
        if target.startswith("symbiote_cli"):
            theirs = layer_of(target)
            if target == "symbiote_cli":
                continue  # __version__ and friends live in the package's face
            if theirs != mine and theirs not in ALLOWED[mine]:
                bad.append(f"line {line}: {me} ({mine}) imports {target} ({theirs})")
        elif mine in PURE_LAYERS and target.split(".")[0] in IO_MODULES:
            bad.append(f"line {line}: {me} is pure but imports {target}")
    assert not bad, "\n".join(bad)


def test_no_import_circles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {module_name(p) for p in MODULES}
    for p in MODULES:
        me = module_name(p)
        graph[me] = {t for _, t in imports(p) if t in names and t != me and not me.startswith(t + ".")}
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in seen and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen and (cycle := visit(start)):
            pytest.fail("import circle: " + " -> ".join(cycle))


def test_the_checker_sees_a_bad_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test above must be able to fail: an upward import inside a core function is caught."""
    fake = tmp_path / "symbiote_cli" / "core" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from symbiote_cli.wiring import make\n", encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "symbiote_cli")
    [(line, target)] = imports(fake)
    assert (line, target) == (2, "symbiote_cli.wiring")
    assert layer_of(module_name(fake)) == "core"
    assert layer_of(target) not in ALLOWED["core"]
