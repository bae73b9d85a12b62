"""Start-up: ``symbiote --help`` and ``symbiote route`` of one event, as subprocesses.

Wall time (median of repeated runs) next to ``python -c "import typer"`` (the floor any Typer CLI
pays) and ``python -c pass``; then which heavy modules each command imported (a ``sys.modules``
check at exit) and the costliest imports (``python -X importtime``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, USER, SimClock, median, new_fake

HEAVY = (
    "github",
    "git",
    "fastapi",
    "starlette",
    "uvicorn",
    "requests",
    "urllib3",
    "cryptography",
    "jwt",
    "yaml",
    "brotli",
    "pydantic",
    "pydantic_settings",
    "rich",
)

_PROBE = """
import atexit, json, sys
heavy = {heavy!r}
def report():
    loaded = sorted(m for m in heavy if m in sys.modules)
    sys.stderr.write("\\nHEAVY " + json.dumps(loaded) + "\\n")
atexit.register(report)
sys.argv = {argv!r}
from symbiote_cli.cli.app import main
main()
"""


def _env(home: Path) -> dict[str, str]:
    drop = ("SYMBIOTE_", "GITHUB_", "GH_", "GIT_", "RUNNER_", "ACTIONS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop) and k not in {"CI", "PYTHONSTARTUP"}}
    env.update({"HOME": str(home), "NO_COLOR": "1", "COLUMNS": "120"})
    return env


def _time(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return median(times)


def _heavy(argv: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    code = _PROBE.format(heavy=HEAVY, argv=argv)
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    for line in done.stderr.splitlines():
        if line.startswith("HEAVY "):
            loaded: list[str] = json.loads(line[6:])
            return loaded
    raise RuntimeError(f"start-up probe failed: {done.stderr[-500:]}")


def _top_imports(argv: list[str], cwd: Path, env: dict[str, str], count: int = 5) -> list[tuple[str, float]]:
    """Packages by the import time of their own modules (ms, self time summed), from ``-X importtime``."""
    code = f"import sys; sys.argv = {argv!r}\nfrom symbiote_cli.cli.app import main\nmain()"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, _cumulative, name = line.removeprefix("import time:").split("|")
        if not own.strip().isdigit():
            continue  # the header line
        top = name.strip().split(".", 1)[0]
        totals[top] = totals.get(top, 0.0) + int(own) / 1000
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def startup(cfg: Any) -> dict[str, Any]:
    runs = 5 if cfg.quick else 11
    exe = Path(sys.executable).parent / "symbiote"
    with tempfile.TemporaryDirectory(prefix="symbiote-bench-start-") as tmp:
        folder = Path(tmp)
        env = _env(folder / "home")
        (folder / "home").mkdir()
        fake_clock = SimClock(real=False)
        fake, _token = new_fake(fake_clock)
        event = fake.issue_opened(USER, REPO, None, "A bug")
        fake.stop()
        (folder / "event.json").write_text(json.dumps(event), encoding="utf-8")
        commands = {
            "python_pass": [sys.executable, "-c", "pass"],
            "import_typer": [sys.executable, "-c", "import typer"],
            "help": [str(exe), "--help"],
            "route": [str(exe), "route", "event.json"],
        }
        for cmd in commands.values():  # warm the page cache and .pyc files
            subprocess.run(cmd, cwd=folder, env=env, capture_output=True, check=True)
        times = {name: _time(cmd, folder, env, runs) for name, cmd in commands.items()}
        heavy = {
            "help": _heavy(["symbiote", "--help"], folder, env),
            "route": _heavy(["symbiote", "route", "event.json"], folder, env),
        }
        top = {
            "help": _top_imports(["symbiote", "--help"], folder, env),
            "route": _top_imports(["symbiote", "route", "event.json"], folder, env),
        }
    typer_s = times["import_typer"]
    return {
        "runs": runs,
        "ms": {name: value * 1000 for name, value in times.items()},
        "ratio_help": times["help"] / typer_s,
        "ratio_route": times["route"] / typer_s,
        "heavy": heavy,
        "top_imports": top,
    }
