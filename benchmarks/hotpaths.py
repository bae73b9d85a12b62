"""Profile Symbiote's hot paths against the fake GitHub (cProfile; pyinstrument when installed).

    .venv/bin/python -m benchmarks.hotpaths idle      # 300 idle cycles (304 + storage refresh)
    .venv/bin/python -m benchmarks.hotpaths burst     # one cycle over a 300-event burst
    .venv/bin/python -m benchmarks.hotpaths busy      # 30 cycles with 2,000 events in today's file
    .venv/bin/python -m benchmarks.hotpaths burst --pyinstrument

Prints the functions with the most own time (or pyinstrument's tree). Waiting on the fake shows up
as ``recv_into`` and waiting on git as ``poll``: that is API time and subprocess time.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import threading
from collections.abc import Callable
from typing import Any

from benchmarks.bench_overhead import _burst
from benchmarks.bench_storage import populate
from benchmarks.common import REPO, USER, Sandbox, SimClock, isolate_git, new_fake, pygithub_on, symbiote_poller


def _scenario(name: str, sandbox: Sandbox, clock: SimClock) -> tuple[Callable[[], None], Callable[[], None]]:
    """(set-up, the part to profile) of one scenario."""
    fake, token = new_fake(clock)
    fork, _origin = sandbox.fork(name)
    if name == "busy":
        populate(fork, clock, 2_000, 2_000)
    state: dict[str, Any] = {}
    stop = threading.Event()

    def setup() -> None:
        poller, _storage = symbiote_poller(fake, token, fork, clock)
        poller.cycle()
        state["poller"] = poller
        if name == "burst":
            _burst(fake)
            clock.advance(60)

    def run() -> None:
        poller = state["poller"]
        if name == "burst":
            poller.cycle()
            return
        for _ in range(300 if name == "idle" else 30):
            if name == "busy":
                for _ in range(10):
                    fake.push(USER, REPO)
            clock.sleep(60, stop)
            poller.cycle()

    return setup, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hotpaths", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=("idle", "burst", "busy"))
    parser.add_argument("--top", type=int, default=25, help="how many functions to print")
    parser.add_argument("--pyinstrument", action="store_true", help="use pyinstrument (pip install pyinstrument)")
    args = parser.parse_args(argv)
    isolate_git()
    with Sandbox() as sandbox:
        clock = SimClock()
        with pygithub_on(clock):
            setup, run = _scenario(args.scenario, sandbox, clock)
            setup()
            if args.pyinstrument:
                profiler_class = importlib.import_module("pyinstrument").Profiler
                profiler = profiler_class(interval=0.0005)
                profiler.start()
                run()
                profiler.stop()
                print(profiler.output_text(unicode=True, color=False, show_all=False))
                return 0
            profile = cProfile.Profile()
            profile.enable()
            run()
            profile.disable()
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
