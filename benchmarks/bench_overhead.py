"""One cycle over a 300-event burst (the events API's whole window): end to end, CPU, overhead per event.

Two measurements:

* **in the loop**: one real ``Poller.cycle`` over the burst against the fake, with stopwatches on
  the calls that talk to GitHub (``list_events``, the executor, the kernel-registry lookups) and
  on each part of Symbiote's own work (parsing and dedupe in ``_fetch``, planning, routing,
  storage). Overhead = cycle work time minus API time. The same cycle also gives the end-to-end
  time a user sees, from the first feed read to the last comment, with write pacing as configured
  (PyGithub's 1 s between writes, 0.25 s between requests): on the compressed clock the pacing
  sleeps are counted rather than slept, so that figure is the real work plus the configured
  sleeps. ``real_pacing=True`` runs the cycle with PyGithub sleeping for real instead (about a
  minute per contestant), which checks that figure against the wall clock. CPU is the poller's
  thread plus its git processes (``common.cpu_seconds``), not the fake's threads.
* **pure**: the same steps run in a tight loop on the 300 parsed events (no I/O at all), for
  stable microsecond figures (CPU time of the thread, so a busy machine does not inflate them).

The burst is 240 record-only events (pushes, stars) and 60 that each want a comment, so every
event is handled in one cycle (60 writes fit the default budget of 60 a minute).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from benchmarks.common import (
    REPO,
    USER,
    CountingObserver,
    Sandbox,
    SimClock,
    Stopwatch,
    cpu_seconds,
    new_fake,
    pygithub_on,
    symbiote_poller,
)
from benchmarks.naive import NaivePoller
from symbiote_cli.core.models import Event, ProcessedEvent
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import BUILTIN_RULES, RulesPlanner, is_sensitive, summarize
from symbiote_cli.flows import poll as poller_module
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import dumps

BURST = 300
ACTING = 60


def _burst(fake: Any) -> None:
    issues: list[int] = []
    for index in range(BURST):
        if index % 5 == 0:
            if index % 10 == 0 or not issues:
                event = fake.issue_opened(USER, REPO, None, f"bug {index}")
                issues.append(int(event["payload"]["issue"]["number"]))
            else:
                fake.issue_comment(USER, REPO, issues[-1], f"detail {index}")
        elif index % 2:
            fake.push(USER, REPO)
        else:
            fake.watch(USER, REPO)


def _pacing(clock: SimClock, real_pacing: bool) -> contextlib.AbstractContextManager[None]:
    """PyGithub's pacing on the compressed clock (counted, not slept), or for real."""
    return contextlib.nullcontext() if real_pacing else pygithub_on(clock)


def _interval(clock: SimClock, real_pacing: bool) -> None:
    """The wait until the next poll; with real pacing also long enough that PyGithub's spacing starts afresh."""
    clock.advance(60)
    if real_pacing:
        time.sleep(1.0)


def _paced(fake: Any, since: int, clock: SimClock, started: float, real_started: float) -> dict[str, Any]:
    """End to end on the fake's own record: first request of the cycle to the last comment it received."""
    with fake._lock:
        first = fake.requests[since].at if len(fake.requests) > since else None
        writes = [w.at for w in fake.writes if first is not None and w.at >= first]
        requests = len(fake.requests) - since
    return {
        "requests": requests,
        "writes": len(writes),
        "first_read_to_last_action_s": (writes[-1] - first) if writes and first is not None else 0.0,
        "cycle_clock_s": clock.now() - started,
        "cycle_real_s": time.perf_counter() - real_started,
    }


def in_loop(cfg: Any, *, real_pacing: bool = False) -> dict[str, Any]:
    """One cycle over the burst for each contestant (see the module docstring)."""
    out: dict[str, Any] = {"events": BURST, "acting": ACTING, "real_pacing": real_pacing}
    out["symbiote"] = _symbiote(cfg, real_pacing)
    out["baseline"] = _naive(cfg, real_pacing, stop_at_seen=False)
    out["baseline_stop"] = _naive(cfg, real_pacing, stop_at_seen=True)
    return out


def _symbiote(cfg: Any, real_pacing: bool) -> dict[str, Any]:
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork, _origin = sandbox.fork("symbiote")
        with _pacing(clock, real_pacing):
            observer = CountingObserver()
            poller, storage = symbiote_poller(fake, token, fork, clock, observer=observer)
            poller.cycle()  # baseline (empty feed)
            _burst(fake)
            _interval(clock, real_pacing)
            watches = {
                name: Stopwatch()
                for name in ("list_events", "execute", "registry", "fetch", "plan", "route", "update", "refresh")
            }
            watches["merge"] = Stopwatch()
            watches["serialise"] = Stopwatch()
            watches["git"] = Stopwatch()
            poller.client.list_events = watches["list_events"].wrap(poller.client.list_events)  # type: ignore[method-assign]
            poller.executor.execute = watches["execute"].wrap(poller.executor.execute)  # type: ignore[method-assign]
            poller.registry.resolve = watches["registry"].wrap(poller.registry.resolve)  # type: ignore[method-assign]
            poller._fetch = watches["fetch"].wrap(poller._fetch)  # type: ignore[method-assign]
            poller.planner.plan = watches["plan"].wrap(poller.planner.plan)  # type: ignore[method-assign]
            storage.update = watches["update"].wrap(storage.update)  # type: ignore[method-assign]
            storage.refresh = watches["refresh"].wrap(storage.refresh)  # type: ignore[method-assign]
            storage._plan = watches["serialise"].wrap(storage._plan)  # type: ignore[method-assign]
            storage._run = watches["git"].wrap(storage._run)  # type: ignore[method-assign]
            real_route, real_merge = poller_module.route_event, layout.merge_events
            poller_module.route_event = watches["route"].wrap(real_route)  # type: ignore[assignment]
            layout.merge_events = watches["merge"].wrap(real_merge)  # type: ignore[assignment]
            since = len(fake.requests)
            try:
                cpu, started = cpu_seconds(), clock.now()
                start = time.perf_counter()
                report = poller.cycle()
                total = time.perf_counter() - start
                cpu = cpu_seconds() - cpu
            finally:
                poller_module.route_event = real_route  # type: ignore[assignment]
                layout.merge_events = real_merge  # type: ignore[assignment]
            paced = _paced(fake, since, clock, started, start)
            storage.close()
        fake.stop()
    api = watches["list_events"].seconds + watches["execute"].seconds + watches["registry"].seconds
    storage_s = watches["update"].seconds + watches["refresh"].seconds
    parts = {
        "parse_dedupe": watches["fetch"].seconds - watches["list_events"].seconds,
        "plan": watches["plan"].seconds,
        "route": watches["route"].seconds,
        "storage": storage_s,
        "storage_merge": watches["merge"].seconds,
        "storage_serialise": watches["serialise"].seconds,
        "storage_git": watches["git"].seconds,
    }
    counted = parts["parse_dedupe"] + parts["plan"] + parts["route"] + parts["storage"]
    return {
        "handled": report.handled,
        "deferred": report.deferred,
        "commits_in_cycle": int(report.commit is not None),
        "git_commands": watches["git"].calls,
        "cycle_s": total,
        "cpu_s": cpu,
        "api_s": api,
        "overhead_s": total - api,
        "overhead_ms_per_event": (total - api) * 1000 / BURST,
        "other_s": total - api - counted,
        **paced,
        **{f"{k}_ms_per_event": v * 1000 / BURST for k, v in parts.items()},
    }


def _naive(cfg: Any, real_pacing: bool, *, stop_at_seen: bool) -> dict[str, Any]:
    """A baseline over the same burst: everything but its HTTP calls is its overhead."""
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        checkout, _origin = sandbox.fork("naive")
        with _pacing(clock, real_pacing):
            naive = NaivePoller(fake.url, token, USER, checkout, clock, stop_at_seen=stop_at_seen)
            naive.cycle()
            _burst(fake)
            _interval(clock, real_pacing)
            http = Stopwatch()
            commit = Stopwatch()
            requester = naive.gh._Github__requester  # type: ignore[attr-defined]
            for name in ("requestJsonAndCheck", "requestJson"):
                setattr(requester, name, http.wrap(getattr(requester, name)))
            naive.commit = commit.wrap(naive.commit)  # type: ignore[method-assign]
            since, commits = len(fake.requests), naive.commits
            cpu, started = cpu_seconds(), clock.now()
            start = time.perf_counter()
            new = naive.cycle()
            total = time.perf_counter() - start
            cpu = cpu_seconds() - cpu
            paced = _paced(fake, since, clock, started, start)
        fake.stop()
    return {
        "handled": new,
        "commits_in_cycle": naive.commits - commits,
        "git_commands": 3 * (naive.commits - commits),  # add, commit, push
        "cycle_s": total,
        "cpu_s": cpu,
        "api_s": http.seconds,
        "api_calls": http.calls,
        "overhead_s": total - http.seconds,
        "overhead_ms_per_event": (total - http.seconds) * 1000 / BURST,
        "storage_ms_per_event": commit.seconds * 1000 / BURST,
        **paced,
    }


def pure(cfg: Any) -> dict[str, Any]:
    """Symbiote's per-event steps on 300 parsed events, no I/O (median of rounds, CPU time)."""
    clock = SimClock(real=False)
    fake, _token = new_fake(clock)
    _burst(fake)
    raw = fake.feed(USER)
    fake.stop()
    rounds = 5 if cfg.quick else 15
    planner = RulesPlanner(BUILTIN_RULES, source="built-in rules")

    def parse() -> list[Event]:
        return [Event.model_validate(item) for item in raw]

    events = parse()
    last = min(e.id_int for e in events) + BURST // 2

    def dedupe() -> list[Event]:
        unique = {e.id: e for e in events}
        ordered = sorted(unique.values(), key=lambda e: e.id_int)
        return [e for e in ordered if e.id_int > last]

    plans = {e.id: planner.plan(e, USER) for e in events}

    def plan() -> None:
        for event in events:
            planner.plan(event, USER)

    def route() -> None:
        for event in events:
            planned = plans[event.id]
            ctx = RoutingContext.build(
                USER, planned={event.id: (summarize(planned), any(is_sensitive(r) for r in planned))}
            )
            route_event(event, ctx)

    records = [
        ProcessedEvent(
            event_id=e.id,
            type=e.type,
            repo=e.repo_name,
            route="ignore",
            reason="recorded only",
            created_at=e.created_at,
            processed_at=clock.now(),
        )
        for e in events
    ]

    class _Empty:
        def read_json(self, path: str) -> Any:
            return None

        def list_paths(self, prefix: str) -> list[str]:
            return []

    def store() -> None:
        for value in layout.merge_events(_Empty(), USER, records, None).values():
            dumps(value)

    steps = {"parse": parse, "dedupe": dedupe, "plan": plan, "route": route, "store_serialise": store}
    out: dict[str, Any] = {}
    for name, step in steps.items():
        times = []
        for _ in range(rounds):
            # CPU time of this thread: no I/O here, and unlike wall time it does not grow while other
            # processes hold the machine's cores.
            start = time.thread_time()
            step()
            times.append(time.thread_time() - start)
        times.sort()
        out[f"{name}_us_per_event"] = times[len(times) // 2] * 1e6 / BURST
    return out
