"""Polling against the fake GitHub in compressed time: idle cost, event-to-action latency, paced writes.

Each contestant (Symbiote, the naive loop, the naive loop that stops paging at the first seen id)
gets its own fake (same code, same seeded feed) and its own bare-repo origin, so the fake's
counters (``points_used``, ``requests``, ``writes``) are the contestant's.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    REPO,
    USER,
    CountingObserver,
    Sandbox,
    SimClock,
    new_fake,
    percentile,
    pygithub_on,
    seed_history,
    symbiote_poller,
    visible_at,
)
from benchmarks.naive import ACK_TAG, NaivePoller

HOUR = 3600.0
INTERVAL = 60.0
HISTORY = 300  # an active user's feed: GitHub serves at most 300 events
THREADS = 50  # notification threads already there (one full page of GET /notifications)
# The baselines by result key: the naive loop, and the same loop with the one-line improvement.
BASELINES = {"baseline": False, "baseline_stop": True}  # key -> stop_at_seen


@dataclass
class Config:
    quick: bool = False
    validate: bool = False
    seed: int = 6


def _requests(fake: Any, since: int) -> tuple[int, int]:
    """(requests, of which 304) recorded by the fake after index ``since``."""
    with fake._lock:
        recorded = fake.requests[since:]
        return len(recorded), sum(1 for r in recorded if r.status == 304)


# --------------------------------------------------------------------------- 1. an idle hour


def idle_hour(cfg: Config) -> dict[str, Any]:
    """One simulated hour with nothing new in a 300-event feed, after the first run's baseline."""
    out: dict[str, Any] = {"history": HISTORY}
    with Sandbox() as sandbox:
        out["symbiote"] = _symbiote_idle_hour(cfg, sandbox, "symbiote")
        # Both sources (issue 15): each cycle also asks GET /notifications with If-Modified-Since.
        both = _symbiote_idle_hour(cfg, sandbox, "symbiote-notifications", threads=THREADS)
        out["symbiote_notifications"] = {"threads": THREADS, **both}

        for key, stop_at_seen in BASELINES.items():
            clock = SimClock()
            fake, token = new_fake(clock, validate=cfg.validate)
            seed_history(fake, HISTORY)
            checkout, _origin = sandbox.fork(key)
            with pygithub_on(clock):
                naive = NaivePoller(fake.url, token, USER, checkout, clock, stop_at_seen=stop_at_seen)
                naive.cycle()  # first run: remembers what is in the feed
                points, index, commits, cycles = fake.points_used, len(fake.requests), naive.commits, naive.cycles
                start = clock.now()
                naive.run(HOUR, INTERVAL)
                requests, not_modified = _requests(fake, index)
                out[key] = {
                    "points": fake.points_used - points,
                    "requests": requests,
                    "not_modified": not_modified,
                    "commits": naive.commits - commits,
                    "cycles": naive.cycles - cycles,
                    "simulated_s": round(clock.now() - start, 1),
                }
            fake.stop()
    return out


def _symbiote_idle_hour(cfg: Config, sandbox: Sandbox, name: str, *, threads: int = 0) -> dict[str, Any]:
    """Symbiote's idle hour after its first run's baseline; with ``threads``, notifications are polled
    too (``--source events,notifications``) and that many threads are already there."""
    clock = SimClock()
    fake, token = new_fake(clock, validate=cfg.validate)
    seed_history(fake, HISTORY)
    for number in range(1, threads + 1):
        reason = ("review_requested", "mention", "subscribed")[number % 3]
        fake.notify(USER, REPO, number, reason=reason, subject_type="PullRequest" if number % 2 else "Issue")
    fork, _origin = sandbox.fork(name)
    settings = {"sources": "events,notifications"} if threads else {}
    with pygithub_on(clock):
        observer = CountingObserver()
        poller, storage = symbiote_poller(fake, token, fork, clock, observer=observer, **settings)
        poller.cycle()  # first run: the baseline of each source
        points, index, commits, cycles = fake.points_used, len(fake.requests), observer.commits, observer.cycles
        start = clock.now()
        poller.opts.deadline = start + HOUR
        poller.run()
        requests, not_modified = _requests(fake, index)
        with fake._lock:
            to_notifications = sum(1 for r in fake.requests[index:] if r.path.startswith("/notifications"))
        result = {
            "points": fake.points_used - points,
            "requests": requests,
            "not_modified": not_modified,
            "commits": observer.commits - commits,  # cycle commits: heartbeats only
            "cycles": observer.cycles - cycles,
            "simulated_s": round(clock.now() - start, 1),
        }
        if threads:
            result["notification_requests"] = to_notifications
        storage.close()
    fake.stop()
    return result


# --------------------------------------------------------------------------- 2. latency


def _arrivals(cfg: Config, count: int, mean_gap: float) -> list[tuple[float, str]]:
    """Offsets (s after the first poll) and kinds of events, a Poisson trickle of acting events."""
    rng = random.Random(cfg.seed)
    offsets: list[tuple[float, str]] = []
    at = 5.0
    for index in range(count):
        at += rng.expovariate(1.0 / mean_gap)
        offsets.append((at, "issue" if index % 2 == 0 else "comment"))
    return offsets


def _schedule(fake: Any, clock: SimClock, start: float, arrivals: list[tuple[float, str]]) -> dict[str, float]:
    """Make the events appear while the contestant sleeps; returns event id -> visible at."""
    visible: dict[str, float] = {}
    issues: list[int] = []

    def inject(kind: str) -> Any:
        def action(_when: float) -> None:
            if kind == "issue" or not issues:
                event = fake.issue_opened(USER, REPO, None, "A bug")
                issues.append(int(event["payload"]["issue"]["number"]))
            else:
                event = fake.issue_comment(USER, REPO, issues[-1], "More detail on this.")
            visible[str(event["id"])] = visible_at(fake)

        return action

    for offset, kind in arrivals:
        clock.at(start + offset, inject(kind))
    return visible


def _latencies(fake: Any, visible: dict[str, float], find: Any) -> list[float]:
    by_event: dict[str, float] = {}
    with fake._lock:
        for comment in fake.comments:
            event_id = find(comment.body)
            if event_id is not None and event_id not in by_event:
                by_event[event_id] = comment.created_at
    return [by_event[e] - seen for e, seen in visible.items() if e in by_event]


def _symbiote_event(body: str) -> str | None:
    marker = body.rfind(" event=")
    if marker < 0 or "<!-- symbiote:" not in body:
        return None
    return body[marker + 7 :].split(" ", 1)[0]


def _naive_event(body: str) -> str | None:
    if ACK_TAG not in body or not body.startswith("Noticed event "):
        return None
    return body.removeprefix("Noticed event ").split(",", 1)[0]


def latency(cfg: Config) -> dict[str, Any]:
    """Event-to-action latency in compressed time with PyGithub's default pacing (0.25 s / 1 s)."""
    count = 16 if cfg.quick else 30
    arrivals = _arrivals(cfg, count, mean_gap=97.0)
    span = arrivals[-1][0] + 3 * INTERVAL
    out: dict[str, Any] = {"events": count}
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        seed_history(fake, HISTORY)
        fork, _origin = sandbox.fork("symbiote")
        with pygithub_on(clock):
            poller, storage = symbiote_poller(fake, token, fork, clock)
            poller.cycle()
            start = clock.now()
            visible = _schedule(fake, clock, start, arrivals)
            poller.opts.deadline = start + span
            poller.run()
            storage.close()
        values = _latencies(fake, visible, _symbiote_event)
        out["symbiote"] = _summary(values, count)
        fake.stop()

        for key, stop_at_seen in BASELINES.items():
            clock = SimClock()
            fake, token = new_fake(clock, validate=cfg.validate)
            seed_history(fake, HISTORY)
            checkout, _origin = sandbox.fork(key)
            with pygithub_on(clock):
                naive = NaivePoller(fake.url, token, USER, checkout, clock, stop_at_seen=stop_at_seen)
                naive.cycle()
                start = clock.now()
                visible = _schedule(fake, clock, start, arrivals)
                naive.run(span, INTERVAL)
            values = _latencies(fake, visible, _naive_event)
            out[key] = _summary(values, count)
            fake.stop()
    return out


def _summary(values: list[float], expected: int) -> dict[str, Any]:
    return {
        "acted": len(values),
        "expected": expected,
        "p50_s": percentile(values, 50),
        "p95_s": percentile(values, 95),
        "max_s": max(values, default=float("nan")),
        "samples": values,
    }


# --------------------------------------------------------------------------- 3b. paced writes


def paced_burst(cfg: Config) -> dict[str, Any]:
    """300 events that each want a comment, at once: how writes are spread under GitHub's limits.

    Each contestant polls until every event is acknowledged, or until 5 cycles in a row add no
    acknowledgment (the rest fell out of GitHub's 300-event window before it got to them)."""
    count = 120 if cfg.quick else 300
    out: dict[str, Any] = {"events": count}
    with Sandbox() as sandbox:
        clock = SimClock()
        fake, token = new_fake(clock, validate=cfg.validate)
        fork, _origin = sandbox.fork("symbiote")
        with pygithub_on(clock):
            observer = CountingObserver()
            poller, storage = symbiote_poller(fake, token, fork, clock, observer=observer)
            poller.cycle()
            for _ in range(count):
                fake.issue_opened(USER, REPO, None, "A bug")
            start, commits, cycles = clock.now(), observer.commits, observer.cycles
            drained = _drain(fake, clock, count, "<!-- symbiote:", poller.cycle)
            out["symbiote"] = {
                **drained,
                "drained_s": None if drained["done_at"] is None else round(drained["done_at"] - start, 1),
                "cycles": observer.cycles - cycles,
                "commits": observer.commits - commits,
                **_write_windows(fake),
            }
            storage.close()
        fake.stop()

        for key, stop_at_seen in BASELINES.items():
            clock = SimClock()
            fake, token = new_fake(clock, validate=cfg.validate)
            checkout, _origin = sandbox.fork(key)
            with pygithub_on(clock):
                naive = NaivePoller(fake.url, token, USER, checkout, clock, stop_at_seen=stop_at_seen)
                naive.cycle()
                for _ in range(count):
                    fake.issue_opened(USER, REPO, None, "A bug")
                start, commits, cycles = clock.now(), naive.commits, naive.cycles
                drained = _drain(fake, clock, count, ACK_TAG, naive.cycle)
                out[key] = {
                    **drained,
                    "drained_s": None if drained["done_at"] is None else round(drained["done_at"] - start, 1),
                    "cycles": naive.cycles - cycles,
                    "commits": naive.commits - commits,
                    **_write_windows(fake),
                }
            fake.stop()
    return out


def _drain(fake: Any, clock: SimClock, count: int, tag: str, cycle: Any) -> dict[str, Any]:
    never = threading.Event()
    acked, idle_cycles, done_at = 0, 0, None
    while idle_cycles < 5:
        cycle()
        now_acked = _acks(fake, tag)
        idle_cycles = 0 if now_acked > acked else idle_cycles + 1
        acked = now_acked
        if acked >= count:
            done_at = clock.now()
            break
        clock.sleep(INTERVAL, never)
    return {"acked": acked, "done_at": done_at}


def _acks(fake: Any, tag: str) -> int:
    with fake._lock:
        return sum(1 for c in fake.comments if tag in c.body)


def _write_windows(fake: Any) -> dict[str, Any]:
    """The busiest 60 s and 3600 s of content creation, and refusals (403/429) by the fake."""
    with fake._lock:
        stamps = sorted(w.at for w in fake.writes)
        refused = sum(1 for r in fake.requests if r.status in (403, 429))
    return {
        "writes": len(stamps),
        "max_per_minute": _max_window(stamps, 60.0),
        "max_per_hour": _max_window(stamps, 3600.0),
        "refused": refused,
    }


def _max_window(stamps: list[float], width: float) -> int:
    best, low = 0, 0
    for high, stamp in enumerate(stamps):
        while stamp - stamps[low] >= width:
            low += 1
        best = max(best, high - low + 1)
    return best
