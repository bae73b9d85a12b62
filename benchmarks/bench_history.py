"""Job start against a storage branch with 100, 10k and 40k commits of history (issue 14).

A chained Actions run starts from a fresh checkout: everything it knows of ``__STORAGE__`` it fetches.
Each size builds the bare origin's history in one ``git fast-import`` (every commit rewrites a cursor
and a day file, as a poll cycle does), then times what a job does before its first poll: a new
clone of the fork, ``Storage.open`` (fetch, verify, migrate) and the reads of ``Poller.start``
(cursor, session, registry, the day files). "before" fetches the whole branch (``fetch_depth=None``,
the old behaviour); "after" is today's default (``FETCH_DEPTH``, one commit). Reported: the median
seconds of 3 starts, the objects fetched and the size of ``.git`` after the start.

    .venv/bin/python -m benchmarks.bench_history            # 100, 10k, 40k commits
    .venv/bin/python -m benchmarks.bench_history --quick    # 100, 2k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Sandbox, git, isolate_git, median
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import SCHEMA_VERSION, Storage

USER = "octo"
REPEATS = 3


def build_history(origin: Path, commits: int) -> None:
    """``commits`` commits on ``__STORAGE__`` of the bare ``origin``, streamed into ``git fast-import``."""
    meta = json.dumps({"schema_version": SCHEMA_VERSION, "symbiote": True}).encode()
    lines: list[bytes] = []
    for number in range(1, commits + 1):
        cursor = json.dumps({"schema_version": SCHEMA_VERSION, "user": USER, "last_event_id": str(number)}).encode()
        day = json.dumps(
            {"schema_version": SCHEMA_VERSION, "events": {str(number): {"event_id": str(number), "n": number}}}
        ).encode()
        message = f"poll {USER}: cycle {number}".encode()
        lines.append(b"commit refs/heads/__STORAGE__\n")
        lines.append(b"committer Symbiote <symbiote@users.noreply.github.com> %d +0000\n" % (1_700_000_000 + number))
        lines.append(b"data %d\n%s\n" % (len(message), message))
        if number == 1:
            lines.append(b"M 100644 inline meta.json\ndata %d\n%s\n" % (len(meta), meta))
        for path, data in ((layout.cursor_path(USER), cursor), (layout.events_path(USER, f"d{number % 30}"), day)):
            lines.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=origin, input=b"".join(lines), check=True)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in (path / ".git").rglob("*") if f.is_file())


def job_start(sandbox: Sandbox, origin: Path, name: str, depth: int | None) -> dict[str, float]:
    """One fresh job: clone of the fork (no storage yet), open the branch, read what ``Poller.start`` reads."""
    fork = sandbox.repo(name)
    git(fork, "remote", "add", "origin", str(origin))
    started = time.perf_counter()
    with Storage(fork, fetch_depth=depth) as storage:
        layout.check_user_files(storage, USER)
        layout.load_cursor(storage, USER)
    seconds = time.perf_counter() - started
    objects = int(git(fork, "count-objects", "-v").split("count: ")[1].split()[0] or 0)
    packed = git(fork, "count-objects", "-v").split("in-pack: ")[1].split()[0]
    return {"seconds": seconds, "objects": objects + int(packed), "git_bytes": _size(fork)}


def run(sizes: list[int]) -> dict[str, Any]:
    isolate_git()
    out: dict[str, Any] = {}
    with Sandbox() as sandbox:
        for size in sizes:
            origin = sandbox.path / f"origin-{size}.git"
            git(sandbox.path, "init", "-q", "--bare", "-b", "main", str(origin))
            build_history(origin, size)
            row: dict[str, Any] = {}
            for label, depth in (("before", None), ("after", 1)):
                starts = [job_start(sandbox, origin, f"job-{size}-{label}-{i}", depth) for i in range(REPEATS)]
                row[label] = {
                    "seconds": median([s["seconds"] for s in starts]),
                    "objects": starts[0]["objects"],
                    "git_mib": starts[0]["git_bytes"] / 2**20,
                }
            out[str(size)] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sizes = [100, 2_000] if args.quick else [100, 10_000, 40_000]
    results = run(sizes)
    print("| commits | before: s | objects | .git MiB | after: s | objects | .git MiB |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size, row in results.items():
        b, a = row["before"], row["after"]
        print(
            f"| {int(size):,} | {b['seconds']:.3f} | {b['objects']:,} | {b['git_mib']:.1f} "
            f"| {a['seconds']:.3f} | {a['objects']:,} | {a['git_mib']:.1f} |"
        )
    small, large = results[str(sizes[0])]["after"]["seconds"], results[str(sizes[-1])]["after"]["seconds"]
    print(f"after: {sizes[-1]:,} commits / {sizes[0]:,} commits = {large / small:.2f}x")


if __name__ == "__main__":
    main()
