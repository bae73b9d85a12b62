"""Shared machinery of the benchmarks: compressed time, the fake GitHub, throw-away git repos, stats.

Time is *compressed*, not frozen: ``SimClock.now()`` is a simulated offset plus the real
``perf_counter``, and ``sleep`` only moves the offset. Waiting between polls costs nothing, but
every real millisecond spent working (HTTP on loopback, JSON, git) still passes on the clock, so
latencies measured with it include processing time. PyGithub's own pacing
(``seconds_between_requests``/``seconds_between_writes``) is redirected to the same clock
(``pygithub_on``), so the default 0.25 s / 1 s spacing is counted in simulated seconds instead of
being slept for real.
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from github import Requester as requester_module  # noqa: N813 - the module, not the class

from symbiote_cli.settings import Settings
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring import PollRequest, build_poller, make_client

if TYPE_CHECKING:
    from symbiote_cli.core.models import ActionRequest, ActionResult, Event, RouteDecision
    from symbiote_cli.flows.poll import CycleReport, Poller

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z
USER = "octo"
REPO = "octo/hello"
GIT_ISOLATION = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
GIT_IDENTITY = ("-c", "user.name=Benchmark", "-c", "user.email=benchmark@example.invalid")


def fake_github_class() -> Any:
    """``tests/fakegithub.py``'s ``FakeGitHub`` (tests/ is not a package the benchmark can import)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from fakegithub import FakeGitHub  # noqa: PLC0415 - importable only once tests/ is on sys.path

    return FakeGitHub


def isolate_git() -> None:
    """Ignore the machine's git configuration for every git this process starts."""
    os.environ.update(GIT_ISOLATION)


# --------------------------------------------------------------------------- time


class SimClock:
    """Compressed time (see the module docstring); satisfies ``symbiote_cli.clock.Clock``."""

    def __init__(self, start: float = START, *, real: bool = True) -> None:
        self.real = real
        self._base = start - (time.perf_counter() if real else 0.0)
        self._lock = threading.Lock()
        self.arrivals: list[tuple[float, Callable[[float], None]]] = []

    def now(self) -> float:
        return self._base + (time.perf_counter() if self.real else 0.0)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._base += max(0.0, seconds)

    def advance_to(self, when: float) -> None:
        self.advance(when - self.now())

    def at(self, when: float, action: Callable[[float], None]) -> None:
        """Run ``action(when)`` when a sleep crosses ``when`` (events arriving while the poller waits)."""
        self.arrivals.append((when, action))
        self.arrivals.sort(key=lambda item: item[0])

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        if stop.is_set():
            return True
        target = self.now() + max(0.0, seconds)
        while self.arrivals and self.arrivals[0][0] <= target:
            when, action = self.arrivals.pop(0)
            self.advance_to(when)
            action(when)
        self.advance_to(target)
        return stop.is_set()


@contextlib.contextmanager
def pygithub_on(clock: SimClock) -> Iterator[None]:
    """Make PyGithub's request spacing read and sleep on ``clock`` (simulated seconds)."""
    real_time = requester_module.time
    real_datetime = requester_module.datetime

    class _Time:
        def __getattr__(self, name: str) -> Any:
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            clock.advance(seconds)

        @staticmethod
        def time() -> float:
            return clock.now()

    class _Datetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.fromtimestamp(clock.now(), tz)

    requester_module.time = _Time()  # type: ignore[assignment]
    requester_module.datetime = _Datetime  # type: ignore[misc]
    try:
        yield
    finally:
        requester_module.time = real_time
        requester_module.datetime = real_datetime  # type: ignore[misc]


class Stopwatch:
    """Accumulates real seconds spent in wrapped calls (nested calls of the same watch count once)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.times: list[float] = []
        self._depth = 0

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._depth:
                return func(*args, **kwargs)
            self._depth += 1
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                self._depth -= 1
                self.seconds += elapsed
                self.times.append(elapsed)
                self.calls += 1

        return timed


# --------------------------------------------------------------------------- git


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=cwd, check=check, capture_output=True, text=True, env=_git_env()
    )
    return done.stdout


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_ISOLATION)
    return env


class Sandbox:
    """A temporary folder for forks and bare origins; removed on exit."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="symbiote-bench-")
        self.path = Path(self._tmp.name)
        self._count = 0

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()

    def fork(self, name: str = "fork") -> tuple[Path, Path]:
        """A working repo on ``main`` with one commit and a bare ``origin`` holding it."""
        fork = self.repo(name)
        origin = fork.parent / "origin.git"
        origin.mkdir()
        git(origin, "init", "--quiet", "--bare", "--initial-branch=main")
        git(fork, "remote", "add", "origin", str(origin))
        git(fork, "push", "--quiet", "-u", "origin", "main")
        return fork, origin

    def repo(self, name: str = "repo") -> Path:
        """A working repo on ``main`` with one commit and no remote (storage stays local)."""
        self._count += 1
        fork = self.path / f"{self._count:03d}-{name}" / "fork"
        fork.mkdir(parents=True)
        git(fork, "init", "--quiet", "--initial-branch=main")
        (fork / "README.md").write_text("# fork\n", encoding="utf-8")
        git(fork, "add", "README.md")
        git(fork, "commit", "--quiet", "-m", "Initial commit")
        return fork


# --------------------------------------------------------------------------- the fake


def new_fake(clock: SimClock, *, validate: bool = False) -> tuple[Any, str]:
    """A started fake GitHub with user ``octo`` (token returned) and ``octo/hello``.

    OpenAPI validation of every response is the fake's test-time honesty check; it is off by
    default here because it costs far more CPU than the answers themselves (``--validate`` turns
    it back on)."""
    fake = fake_github_class()(now=clock.now, validate=validate)
    token = "ghp_bench_" + secrets.token_hex(12)
    fake.add_user(USER, token)
    fake.token = token
    fake.add_repo(REPO)
    fake.start()
    return fake, token


def seed_history(fake: Any, count: int, *, user: str = USER, repo: str = REPO) -> None:
    """``count`` events already in the feed (pushes, stars, issues, comments), before the run starts."""
    for number in range(count):
        kind = number % 4
        if kind == 0:
            fake.issue_opened(user, repo, None, f"old issue {number}")
        elif kind == 1:
            fake.push(user, repo)
        elif kind == 2:
            fake.watch(user, repo)
        else:
            fake.push(user, repo)


def visible_at(fake: Any, user: str = USER) -> float:
    """When the newest event of ``user`` became visible in the feed (the fake's own record)."""
    with fake._lock:
        return float(fake._events[user.lower()][-1].visible_at)


# --------------------------------------------------------------------------- Symbiote in-process


class CountingObserver:
    """An Observer that only counts (the memory run must not keep per-cycle objects)."""

    def __init__(self) -> None:
        self.cycles = 0
        self.commits = 0
        self.decided_count = 0
        self.acted_count = 0
        self.warnings = 0
        self.last_report: CycleReport | None = None

    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        self.cycles += 1
        self.commits += report.commit is not None
        self.last_report = report

    def decided(self, event: Event, decision: RouteDecision) -> None:
        self.decided_count += 1

    def acted(self, event: Event | None, request: ActionRequest, result: ActionResult) -> None:
        self.acted_count += 1

    def warn(self, message: str) -> None:
        self.warnings += 1


def symbiote_poller(
    fake: Any, token: str, fork: Path, clock: SimClock, *, observer: Any = None, **settings: Any
) -> tuple[Poller, Storage]:
    """A started ``Poller`` for ``octo`` wired exactly as ``symbiote poll`` wires it (``wiring.build_poller``)."""
    values: dict[str, Any] = {"gh_pat": token, "api_url": fake.url, "storage_repo": fork, **settings}
    config = Settings.model_validate(values)
    storage = Storage(fork, clock=clock).open()
    poller = build_poller(
        config,
        PollRequest(user=USER),
        client=make_client(config),
        storage=storage,
        clock=clock,
        observer=observer or CountingObserver(),
        stop=threading.Event(),
    )
    poller.start()
    return poller, storage


# --------------------------------------------------------------------------- numbers


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    """Linear-interpolated percentile (``pct`` in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_seconds() -> float:
    """CPU seconds of the calling thread and of this process's git children, live or reaped.

    The fake GitHub answers from other threads of the same process, so ``time.process_time`` would
    count its work too; a difference of two readings is the contestant's own CPU (Python, HTTP
    client, JSON, and the git processes it started, GitPython's persistent ``cat-file`` included).
    """
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = time.thread_time() + reaped.ru_utime + reaped.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    children: set[str] = set()
    for listing in Path("/proc/self/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children.update(listing.read_text(encoding="ascii").split())
    for pid in children:
        with contextlib.suppress(OSError, IndexError, ValueError):
            # After the command name (which may hold spaces): state ppid ... utime stime cutime cstime.
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / tick
    return total


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (pages)."""
    fields = Path("/proc/self/statm").read_text(encoding="ascii").split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Machine:
    cpus: int
    cpu_model: str
    memory_gib: float
    python: str
    git: str
    kernel: str
    date: str
    extra: dict[str, str] = field(default_factory=dict)


def machine() -> Machine:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
                break
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    git_version = git(ROOT, "--version").strip().removeprefix("git version ")
    return Machine(
        cpus=cpus,
        cpu_model=model,
        memory_gib=round(memory, 1),
        python=platform.python_version(),
        git=git_version,
        kernel=platform.release(),
        date=datetime.now(tz=UTC).strftime("%Y-%m-%d"),
    )
