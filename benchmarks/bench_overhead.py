"""Overhead per event with API time excluded, for a 300-event burst (the events API's whole window).

Two measurements:

* **in the loop**: one real ``Poller.cycle`` over the burst against the fake, with stopwatches on
  the calls that talk to GitHub (``list_events``, the executor, the kernel-registry lookups) and
  on each part of Symbiote's own work (parsing and dedupe in ``_fetch``, planning, routing,
  storage). Overhead = cycle wall time minus API time.
* **pure**: the same steps run in a tight loop on the 300 parsed events (no I/O at all), for
  stable microsecond figures.

The burst is 240 record-only events (pushes, stars) and 60 that each want a comment, so every
event is handled in one cycle (60 writes fit the default budget of 60 a minute).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import (
    REPO,
    USER,
    CountingObserver,
    Sandbox,
    SimClock,
    Stopwatch,
    new_fake,
    pygithub_on,
    symbiote_poller,
)
from benchmarks.naive import NaivePoller

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


def in_loop(cfg: Any) -> dict[str, Any]:
    import symbiote_cli.flows.poll as poller_module
    from symbiote_cli.storage import layout as state

    out: dict[str, Any] = {"events": BURST, "acting": ACTING}
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork, _origin = sandbox.fork("symbiote")
        with pygithub_on(clock):
            observer = CountingObserver()
            poller, storage = symbiote_poller(fake, token, fork, clock, observer=observer)
            poller.cycle()  # baseline (empty feed)
            _burst(fake)
            clock.advance(60)
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
            real_route, real_merge = poller_module.route_event, state.merge_events
            poller_module.route_event = watches["route"].wrap(real_route)  # type: ignore[assignment]
            state.merge_events = watches["merge"].wrap(real_merge)  # type: ignore[assignment]
            try:
                start = time.perf_counter()
                report = poller.cycle()
                total = time.perf_counter() - start
            finally:
                poller_module.route_event = real_route  # type: ignore[assignment]
                state.merge_events = real_merge  # type: ignore[assignment]
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
    out["symbiote"] = {
        "handled": report.handled,
        "deferred": report.deferred,
        "commits_in_cycle": int(report.commit is not None),
        "git_commands": watches["git"].calls,
        "cycle_s": total,
        "api_s": api,
        "overhead_s": total - api,
        "overhead_ms_per_event": (total - api) * 1000 / BURST,
        "other_s": total - api - counted,
        **{f"{k}_ms_per_event": v * 1000 / BURST for k, v in parts.items()},
    }

    # The baseline over the same burst: everything but its HTTP calls.
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        checkout, _origin = sandbox.fork("naive")
        with pygithub_on(clock):
            naive = NaivePoller(fake.url, token, USER, checkout, clock)
            naive.cycle()
            _burst(fake)
            http = Stopwatch()
            commit = Stopwatch()
            requester = naive.gh._Github__requester  # type: ignore[attr-defined]
            for name in ("requestJsonAndCheck", "requestJson"):
                setattr(requester, name, http.wrap(getattr(requester, name)))
            naive.commit = commit.wrap(naive.commit)  # type: ignore[method-assign]
            start = time.perf_counter()
            new = naive.cycle()
            total = time.perf_counter() - start
        fake.stop()
    out["baseline"] = {
        "handled": new,
        "commits_in_cycle": 1,
        "cycle_s": total,
        "api_s": http.seconds,
        "api_calls": http.calls,
        "overhead_s": total - http.seconds,
        "overhead_ms_per_event": (total - http.seconds) * 1000 / BURST,
        "storage_ms_per_event": commit.seconds * 1000 / BURST,
    }
    return out


def pure(cfg: Any) -> dict[str, Any]:
    """Symbiote's per-event steps on 300 parsed events, no I/O (median of rounds)."""
    from symbiote_cli.storage import layout as state
    from symbiote_cli.core.models import Event, ProcessedEvent
    from symbiote_cli.core.routing import RoutingContext, route_event
    from symbiote_cli.core.rules import BUILTIN_RULES, RulesPlanner, is_sensitive, summarize
    from symbiote_cli.storage.branch import dumps

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
        for value in state.merge_events(_Empty(), USER, records, None).values():
            dumps(value)

    steps = {"parse": parse, "dedupe": dedupe, "plan": plan, "route": route, "store_serialise": store}
    out: dict[str, Any] = {}
    for name, step in steps.items():
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        times.sort()
        out[f"{name}_us_per_event"] = times[len(times) // 2] * 1e6 / BURST
    return out
