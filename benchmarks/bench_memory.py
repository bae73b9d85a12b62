"""Memory over a long session: 20,000 cycles (``--quick``: 2,000) of a real Poller in compressed time.

The long run keeps the storage branch local (no remote): the per-cycle ``git fetch`` and the push
are git subprocesses that hold no Python state but cost ~15 ms a cycle here, which would put
20,000 cycles far past the time budget. A second run of 2,000 cycles (``--quick``: 500) with the
bare origin checks that the remote path does not grow either.

Every 20th cycle sees a push (recorded, committed), every 200th an opened issue (acknowledged, and
the acknowledgment comes back as our own event next cycle); the rest are idle 304s, with
heartbeats every 900 simulated seconds. Resident set size is read from ``/proc/self/statm`` after
a ``gc.collect()``. Growth is measured from the end of the warm-up (the first 10% of cycles: the
storage's bounded caches fill up there) to the end.

A third, short run stands for a busy day: today's file already holds 2,000 events and every
cycle adds 10, so each commit writes (and the storage's parse cache keeps) a new, large version of
that file.

The fake GitHub lives in the same process, so its own bookkeeping is trimmed as the run goes (its
request log, and feed, comments and writes beyond what GitHub would still serve): that memory is
the fake's, not Symbiote's.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import threading
import time
from typing import Any

from benchmarks.bench_polling import Config
from benchmarks.bench_storage import populate
from benchmarks.common import (
    REPO,
    USER,
    CountingObserver,
    Sandbox,
    SimClock,
    isolate_git,
    new_fake,
    pygithub_on,
    rss_bytes,
    symbiote_poller,
)


def _trim_fake(fake: Any) -> None:
    with fake._lock:
        fake.requests.clear()
        for login, events in fake._events.items():
            fake._events[login] = events[-30:]
        del fake.writes[:-600]
        del fake.comments[:-50]


def _sample() -> tuple[int, int]:
    gc.collect()
    return rss_bytes(), len(gc.get_objects())


def memory(cfg: Any) -> dict[str, Any]:
    long_run = session(cfg, 2_000 if cfg.quick else 20_000, remote=False)
    long_run["with_origin"] = session(cfg, 500 if cfg.quick else 2_000, remote=True)
    long_run["busy"] = busy_day(cfg)
    return long_run


def session(cfg: Any, cycles: int, *, remote: bool) -> dict[str, Any]:
    """One long poll session; ``remote``: the fork has a bare origin (fetch each cycle, push each commit)."""
    warmup = cycles // 10
    samples: list[tuple[int, int, int]] = []
    stop = threading.Event()
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork = sandbox.fork("symbiote")[0] if remote else sandbox.repo("symbiote")
        with pygithub_on(clock):
            observer = CountingObserver()
            poller, storage = symbiote_poller(fake, token, fork, clock, observer=observer)
            poller.cycle()
            started = time.perf_counter()
            simulated = clock.now()
            rss, objects = _sample()
            samples.append((0, rss, objects))
            for index in range(1, cycles + 1):
                if index % 20 == 0:
                    fake.push(USER, REPO)
                if index % 200 == 100:
                    fake.issue_opened(USER, REPO, None, "A bug")
                poller.cycle()
                clock.sleep(60, stop)
                if index % 100 == 0:
                    _trim_fake(fake)
                if index == warmup or index % (cycles // 10) == 0:
                    rss, objects = _sample()
                    samples.append((index, rss, objects))
            wall = time.perf_counter() - started
            simulated = clock.now() - simulated
            stats = poller.stats
            storage.close()
        fake.stop()
    at_warmup = next(s for s in samples if s[0] == warmup)
    end = samples[-1]
    return {
        "cycles": cycles,
        "remote": remote,
        "warmup": warmup,
        "simulated_hours": round(simulated / 3600, 1),
        "wall_s": round(wall, 1),
        "ms_per_cycle": wall * 1000 / cycles,
        "commits": observer.commits,
        "events": stats.events_processed,
        "actions": stats.actions_taken,
        "rss_start_mb": samples[0][1] / 2**20,
        "rss_warm_mb": at_warmup[1] / 2**20,
        "rss_end_mb": end[1] / 2**20,
        "growth_mb": (end[1] - at_warmup[1]) / 2**20,
        "growth_from_start_mb": (end[1] - samples[0][1]) / 2**20,
        "objects_warm": at_warmup[2],
        "objects_end": end[2],
        "samples": [(c, round(r / 2**20, 2), o) for c, r, o in samples],
    }


def busy_day(cfg: Any) -> dict[str, Any]:
    today = 2_000
    per_cycle = 10
    cycles = 60 if cfg.quick else 100
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork, _origin = sandbox.fork("busy")
        populate(fork, clock, today, today)
        with pygithub_on(clock):
            poller, storage = symbiote_poller(fake, token, fork, clock)
            poller.cycle()
            before, _ = _sample()
            for index in range(cycles):
                for _ in range(per_cycle):
                    fake.push(USER, REPO)
                clock.advance(60)
                poller.cycle()
                if index % 20 == 0:
                    _trim_fake(fake)
            _trim_fake(fake)
            after, _ = _sample()
            cache = getattr(storage, "_cache", {})
            cache_bytes = sum(len(value) for value in cache.values())
            storage.close()
        fake.stop()
    return {
        "today": today,
        "per_cycle": per_cycle,
        "cycles": cycles,
        "growth_mb": (after - before) / 2**20,
        "cache_mb": cache_bytes / 2**20,
        "cache_entries": len(cache),
    }


def in_fresh_process(cfg: Any) -> dict[str, Any]:
    """Run ``memory`` in a new interpreter, so the heap left by other benchmarks does not blur RSS."""
    args = [sys.executable, "-m", "benchmarks.bench_memory"]
    args += ["--quick"] if cfg.quick else []
    args += ["--validate"] if cfg.validate else []
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory benchmark failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--validate", action="store_true")
    args = parser.parse_args()
    isolate_git()
    print(json.dumps(memory(Config(quick=args.quick, validate=args.validate))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
