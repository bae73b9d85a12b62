"""Heavy modules are imported only where used, so `symbiote --help` and `route` start fast
(the timings themselves are in docs/performance.md; this guards the imports)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, runpy, sys
sys.argv = ["symbiote", *json.loads(sys.argv[1])]
try:
    runpy.run_module("symbiote_cli", run_name="__main__")
except SystemExit:
    pass
heavy = ("github", "git", "fastapi", "uvicorn", "starlette", "cryptography", "brotli", "jwt", "requests")
sys.stderr.write("LOADED " + json.dumps([m for m in heavy if m in sys.modules]) + "\\n")
"""

EVENT = {
    "id": "40000000001",
    "type": "IssuesEvent",
    "actor": {"login": "octo"},
    "repo": {"name": "octo/hello"},
    "payload": {"action": "opened", "issue": {"number": 1}},
}


def loaded(args: list[str], stdin: str = "", expect: str = "") -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)], input=stdin, capture_output=True, text=True, check=False
    )
    assert expect in done.stdout, done.stdout + done.stderr
    line = [x for x in done.stderr.splitlines() if x.startswith("LOADED ")][-1]
    return list(json.loads(line[len("LOADED ") :]))


def test_help_imports_nothing_heavy() -> None:
    assert loaded(["--help"], expect="poll") == []


def test_route_imports_nothing_heavy() -> None:
    # Offline, route reads the kernel registry cached on the storage branch: git, and nothing else.
    assert set(loaded(["route", "-", "--json", "--offline"], json.dumps(EVENT), expect='"route": "app"')) <= {"git"}
