"""Storage: committing and pushing one cycle with 1k / 10k / 100k events already on the branch.

Stored events are spread 1,000 a day over past days (``users/octo/events/<day>.json``); each
measured cycle is a real ``Poller.cycle`` that handles 10 new record-only events, so the commit
holds the cursor and today's day file. Time is that cycle's ``Storage.update`` (plan, blobs,
private index, commit, compare-and-swap, push to the bare origin). Per stored event we report the
bytes of the new git objects: uncompressed, as written (zlib-compressed loose objects), and as a
thin pack (what the push sends; roughly what stays after the remote repacks).

A second series keeps the branch at 1k events but grows *today's* file (0 / 1k / 5k events): a
cycle rewrites the whole day file, so that is where the cost of a busy day shows.

The baselines (both use the same storage) keep every id they have seen in one ``state.json`` that
they rewrite, commit and push in every cycle that saw a new id; every measured cycle here does.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO,
    START,
    USER,
    Sandbox,
    SimClock,
    Stopwatch,
    git,
    median,
    new_fake,
    pygithub_on,
    symbiote_poller,
)
from benchmarks.naive import commit_state, start_branch
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

PER_DAY = 1000
PER_CYCLE = 10
DAY = 86400.0


def _record(event_id: int, at: float, acting: bool) -> dict[str, Any]:
    """One stored record, shaped as ``layout.merge_events`` writes it."""
    record: dict[str, Any] = {
        "event_id": str(event_id),
        "type": "IssuesEvent" if acting else "PushEvent",
        "repo": REPO,
        "route": "app" if acting else "ignore",
        "reason": "public repo, safe action: comment" if acting else "PushEvent: recorded only, nothing to do",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
        "processed_at": at + 30,
        "private": False,
        "actions": [],
    }
    if acting:
        record["actions"] = [
            {
                "idempotency_key": f"ack-{event_id}",
                "kind": "comment",
                "repo": REPO,
                "status": "done",
                "detail": "comment posted",
                "url": f"https://github.com/{REPO}/issues/{event_id % 997 + 1}#issuecomment-{event_id + 7}",
                "at": at + 31,
            }
        ]
    return record


def populate(fork: Path, clock: SimClock, total: int, today: int) -> None:
    """Put ``total`` events on the branch (``today`` of them in today's file, the rest on past days)."""
    storage = Storage(fork, clock=clock).open()
    files: dict[str, dict[str, Any]] = {}
    event_id = 30_000_000_000
    past = total - today
    for index in range(past):
        day_start = START - DAY * (1 + index // PER_DAY)
        at = day_start + (index % PER_DAY) * (DAY / PER_DAY)
        path = layout.events_path(USER, layout.day_of(at))
        files.setdefault(path, {})[str(event_id)] = _record(event_id, at, index % 5 == 0)
        event_id += 1
    for index in range(today):
        at = START - 3600 + index * (3000 / max(1, today))
        path = layout.events_path(USER, layout.day_of(START))
        files.setdefault(path, {})[str(event_id)] = _record(event_id, at, index % 5 == 0)
        event_id += 1
    changes = {path: layout.day_json(events) for path, events in files.items()}
    if changes:
        storage.update(lambda _view: changes, f"benchmark: {total} stored events")
    storage.close()


def _object_bytes(repo: Path, old: str, new: str) -> tuple[int, int, int]:
    """(uncompressed, loose on disk, thin pack) bytes of the objects reachable from new but not old."""
    listing = git(repo, "rev-list", "--objects", f"{old}..{new}")
    ids = "\n".join(line.split(" ", 1)[0] for line in listing.splitlines() if line.strip()) + "\n"
    sizes = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectsize) %(objectsize:disk)"],
        cwd=repo,
        input=ids,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    raw = sum(int(v) for v in sizes[0::2])
    disk = sum(int(v) for v in sizes[1::2])
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs", "--thin", "-q"],
        cwd=repo,
        input=f"{new}\n^{old}\n".encode(),
        capture_output=True,
        check=True,
    ).stdout
    return raw, disk, len(pack)


def symbiote_cycles(cfg: Any, total: int, today: int, cycles: int) -> dict[str, Any]:
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork, _origin = sandbox.fork("symbiote")
        populate(fork, clock, total, today)
        with pygithub_on(clock):
            poller, storage = symbiote_poller(fake, token, fork, clock)
            poller.cycle()  # baseline
            fake.push(USER, REPO)
            clock.advance(60)
            poller.cycle()  # first handled cycle: warms the caches
            before = storage.tip()
            watch = Stopwatch()
            storage.update = watch.wrap(storage.update)  # type: ignore[method-assign]
            for _ in range(cycles):
                for _ in range(PER_CYCLE):
                    fake.push(USER, REPO)
                clock.advance(60)
                poller.cycle()
            after = storage.tip()
            storage.close()
        fake.stop()
        assert before is not None
        assert after is not None
        raw, disk, pack = _object_bytes(fork, before, after)
    stored = cycles * PER_CYCLE
    return {
        "stored": total,
        "today": today,
        "commit_push_ms": median(watch.times) * 1000,
        "commits": watch.calls,
        "raw_bytes_per_event": raw / stored,
        "loose_bytes_per_event": disk / stored,
        "pack_bytes_per_event": pack / stored,
    }


def baseline_cycles(total: int, cycles: int) -> dict[str, Any]:
    with Sandbox() as sandbox:
        checkout, _origin = sandbox.fork("naive")
        start_branch(checkout)
        seen = {str(30_000_000_000 + i) for i in range(total)}
        commit_state(checkout, seen, 0)
        before = git(checkout, "rev-parse", "HEAD").strip()
        times = []
        next_id = 40_000_000_000
        for cycle in range(1, cycles + 1):
            for _ in range(PER_CYCLE):
                seen.add(str(next_id))
                next_id += 1
            start = time.perf_counter()
            commit_state(checkout, seen, cycle)
            times.append(time.perf_counter() - start)
        after = git(checkout, "rev-parse", "HEAD").strip()
        raw, disk, pack = _object_bytes(checkout, before, after)
    stored = cycles * PER_CYCLE
    return {
        "stored": total,
        "commit_push_ms": median(times) * 1000,
        "raw_bytes_per_event": raw / stored,
        "loose_bytes_per_event": disk / stored,
        "pack_bytes_per_event": pack / stored,
    }


def storage(cfg: Any) -> dict[str, Any]:
    sizes = [1_000, 10_000] if cfg.quick else [1_000, 10_000, 100_000]
    cycles = 5 if cfg.quick else 10
    out: dict[str, Any] = {"per_cycle": PER_CYCLE, "per_day": PER_DAY}
    out["symbiote"] = [symbiote_cycles(cfg, n, 0, cycles) for n in sizes]
    todays = [0, 1_000] if cfg.quick else [0, 1_000, 5_000]
    out["symbiote_today"] = [symbiote_cycles(cfg, 1_000 + t, t, cycles) for t in todays]
    out["baseline"] = [baseline_cycles(n, cycles) for n in sizes]
    return out
