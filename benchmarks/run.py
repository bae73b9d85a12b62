"""Run Symbiote's benchmarks next to the two naive baselines and report the medians.

    .venv/bin/python -m benchmarks.run            # everything (12-18 minutes on a shared 2-core machine)
    .venv/bin/python -m benchmarks.run --quick    # smaller sizes, one repeat, no real-sleep trial (about 2 minutes)
    .venv/bin/python -m benchmarks.run --write    # ... and rewrite docs/performance.md
    .venv/bin/python -m benchmarks.run --only latency,storage --json bench.json
    .venv/bin/python -m benchmarks.run --render bench.json --write   # re-render saved results

Nothing here asserts a timing: the numbers are printed (and written with ``--write``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_history,
    bench_idle_git,
    bench_memory,
    bench_overhead,
    bench_polling,
    bench_startup,
    bench_storage,
    bench_worker,
)
from benchmarks.common import ROOT, isolate_git, machine, median
from benchmarks.report import render, write

NAMES = ("idle", "latency", "overhead", "paced", "storage", "memory", "startup", "worker", "history", "idle_git")
SIDES = ("symbiote", "baseline", "baseline_stop")  # Symbiote, the naive loop, naive + stop at the first seen id
PACED_KEYS = ("first_read_to_last_action_s", "cycle_real_s", "cpu_s", "writes", "handled")


def _latency(cfg: bench_polling.Config) -> dict[str, Any]:
    repeats = 1 if cfg.quick else 3
    runs = [
        bench_polling.latency(bench_polling.Config(quick=cfg.quick, validate=cfg.validate, seed=cfg.seed + index))
        for index in range(repeats)
    ]
    out: dict[str, Any] = {"runs": repeats, "events": runs[0]["events"]}
    for side in SIDES:
        pooled = [value for run in runs for value in run[side]["samples"]]
        out[side] = {
            "acted": sum(run[side]["acted"] for run in runs),
            "expected": sum(run[side]["expected"] for run in runs),
            "p50_s": median([run[side]["p50_s"] for run in runs]),
            "p95_s": median([run[side]["p95_s"] for run in runs]),
            "max_s": max(pooled, default=float("nan")),
            "pooled_p95_s": bench_polling.percentile(pooled, 95),
        }
    return out


def _overhead(cfg: bench_polling.Config) -> dict[str, Any]:
    """Medians of repeated cycles on the compressed clock; in a full run also one cycle each with real sleeps."""
    repeats = 1 if cfg.quick else 3
    runs = [bench_overhead.in_loop(cfg) for _ in range(repeats)]
    out: dict[str, Any] = {"runs": repeats, "events": runs[0]["events"], "acting": runs[0]["acting"]}
    for side in SIDES:
        keys = runs[0][side].keys()
        out[side] = {key: median([float(run[side][key]) for run in runs]) for key in keys}
    out["pure"] = bench_overhead.pure(cfg)
    if not cfg.quick:  # about a minute a contestant: PyGithub sleeps between writes for real
        real = bench_overhead.in_loop(cfg, real_pacing=True)
        out["real_pacing"] = {side: {key: real[side][key] for key in PACED_KEYS} for side in SIDES}
    return out


def _history(cfg: bench_polling.Config) -> dict[str, Any]:
    """Job start against 100 / 10k / 40k commits of storage history (100 / 2k with ``--quick``)."""
    sizes = [100, 2_000] if cfg.quick else [100, 10_000, 40_000]
    return {"sizes": sizes, "starts": bench_history.run(sizes)}


def _idle_git(cfg: bench_polling.Config) -> dict[str, Any]:
    """Git processes and CPU per idle cycle, before (a fetch every cycle) and after, for 1 and 50 pollers."""
    del cfg
    out: dict[str, Any] = {}
    for label, count, shared in bench_idle_git.CASES:
        out[label] = {
            "before": bench_idle_git.measure(count, before=True, shared=shared),
            "after": bench_idle_git.measure(count, before=False, shared=shared),
        }
    return out


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and one repeat (a smoke run)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(NAMES)}")
    parser.add_argument("--write", action="store_true", help="rewrite docs/performance.md with the results")
    parser.add_argument("--json", type=Path, help="also write the raw results as JSON here")
    parser.add_argument("--validate", action="store_true", help="keep the fake's OpenAPI validation on (slower)")
    parser.add_argument("--render", type=Path, help="only render results saved earlier with --json")
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        print(render(saved))
        if args.write:
            write(ROOT / "docs" / "performance.md", saved)
        return 0
    chosen = [n.strip() for n in args.only.split(",") if n.strip()] or list(NAMES)
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    cfg = bench_polling.Config(quick=args.quick, validate=args.validate)
    isolate_git()
    os.chdir(ROOT)
    steps: dict[str, Callable[[bench_polling.Config], dict[str, Any]]] = {
        "idle": bench_polling.idle_hour,
        "latency": _latency,
        "overhead": _overhead,
        "paced": bench_polling.paced_burst,
        "storage": bench_storage.storage,
        "memory": bench_memory.in_fresh_process,
        "startup": bench_startup.startup,
        "worker": bench_worker.worker,
        "history": _history,
        "idle_git": _idle_git,
    }
    results: dict[str, Any] = {
        "machine": machine().__dict__,
        "quick": args.quick,
        "load_before": _load_average(),
        "command": "python -m benchmarks.run" + (" --quick" if args.quick else ""),
    }
    started = time.perf_counter()
    for name in chosen:
        began = time.perf_counter()
        print(f"[{name}] running ...", file=sys.stderr, flush=True)
        results[name] = steps[name](cfg)
        results[name]["wall_s"] = round(time.perf_counter() - began, 1)
        print(f"[{name}] done in {results[name]['wall_s']} s", file=sys.stderr, flush=True)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    results["load_after"] = _load_average()
    text = render(results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if args.write:
        write(ROOT / "docs" / "performance.md", results)
        print("updated docs/performance.md (the blocks between the bench markers)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
