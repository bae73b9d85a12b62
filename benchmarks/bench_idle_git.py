"""Git processes and CPU per idle cycle (issue 14): 1 poller, and 50 pollers in one process.

An idle cycle is one where the feed answers 304 and nothing is due (no heartbeat, empty inbox).
"before" is the old behaviour, a ``Storage.refresh`` (fetch + rev-parses) every cycle, forced here
by making ``Poller._inbox_may_have_changed`` always true; "after" is today's: no git process on most
idle cycles, one ``git ls-remote`` every ``inbox_probe_every`` (5) of them. The 50 pollers are 50
users of one fork, each with its own ``Storage`` as separate poll processes have, and then all on one
``Storage`` as the worker's local pollers are (they share one probe per half interval). Git processes
are counted at ``subprocess.Popen`` (GitPython starts every git command there); CPU is
``common.cpu_seconds`` (this thread plus git children).

    .venv/bin/python -m benchmarks.bench_idle_git
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CountingObserver,
    Sandbox,
    SimClock,
    cpu_seconds,
    isolate_git,
    new_fake,
    pygithub_on,
)
from symbiote_cli.flows.poll import Poller
from symbiote_cli.settings import Settings
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring import PollRequest, build_poller, make_client

CYCLES = 50


class GitCounter:
    """Counts the git processes started while installed (every ``Popen`` whose program is git)."""

    def __init__(self) -> None:
        self.count = 0
        self._real = subprocess.Popen.__init__

    def __enter__(self) -> GitCounter:
        counter, real = self, self._real

        def init(popen: Any, args: Any, *rest: Any, **kwargs: Any) -> None:
            program = args[0] if isinstance(args, list | tuple) and args else str(args)
            if Path(str(program)).name == "git":
                counter.count += 1
            real(popen, args, *rest, **kwargs)

        subprocess.Popen.__init__ = init  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.Popen.__init__ = self._real  # type: ignore[method-assign]


def _pollers(fake: Any, token: str, fork: Path, clock: SimClock, users: list[str], shared: bool) -> list[Poller]:
    # No heartbeat falls inside the measured cycles: they are idle by definition (nothing due).
    config = Settings.model_validate(
        {"gh_pat": token, "api_url": fake.url, "storage_repo": fork, "heartbeat_interval": 86400.0}
    )
    pollers = []
    one = Storage(fork, clock=clock).open() if shared else None
    for user in users:
        storage = one or Storage(fork, clock=clock).open()
        poller = build_poller(
            config, PollRequest(user=user), client=make_client(config), storage=storage, clock=clock,
            observer=CountingObserver(), stop=threading.Event(),
        )
        poller.start()
        poller.cycle()  # baseline: from now on the feed answers 304
        pollers.append(poller)
    return pollers


def measure(count: int, *, before: bool, shared: bool = False) -> dict[str, float]:
    clock = SimClock(real=False)
    with Sandbox() as sandbox, pygithub_on(clock):
        fake, token = new_fake(clock)
        users = ["octo"] + [f"user{n}" for n in range(1, count)]
        for user in users[1:]:
            fake.add_user(user, token)
        try:
            fork, _origin = sandbox.fork()
            pollers = _pollers(fake, token, fork, clock, users, shared)
            if before:
                for poller in pollers:
                    poller._inbox_may_have_changed = lambda: True  # type: ignore[method-assign]
            with GitCounter() as counter:
                cpu = cpu_seconds()
                for _ in range(CYCLES):
                    clock.advance(60.0)
                    for poller in pollers:
                        poller.cycle()
                cpu = cpu_seconds() - cpu
        finally:
            fake.stop()
    cycles = CYCLES * count
    return {"git_per_cycle": counter.count / cycles, "cpu_ms_per_cycle": 1000.0 * cpu / cycles}


CASES = (
    ("1 poller", 1, False),
    ("50 pollers", 50, False),
    ("50 pollers on one Storage (the worker)", 50, True),
)
"""(label, pollers, whether they share one ``Storage``)."""


def main() -> None:
    isolate_git()
    print("| pollers | before: git/cycle | CPU ms/cycle | after: git/cycle | CPU ms/cycle |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for label, count, shared in CASES:
        old, new = measure(count, before=True, shared=shared), measure(count, before=False, shared=shared)
        print(
            f"| {label} | {old['git_per_cycle']:.3f} | {old['cpu_ms_per_cycle']:.1f} "
            f"| {new['git_per_cycle']:.3f} | {new['cpu_ms_per_cycle']:.1f} |"
        )


if __name__ == "__main__":
    main()
