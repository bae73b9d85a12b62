"""Faults from GitHub: every event still acted on exactly once, or recorded as failed once.

The poll loop runs in-process against the fake GitHub on loopback, with real git storage
pushed to a bare origin, on a ``SimClock`` shared with the fake. Each case injects one
kind of fault (5xx bursts and outages, resets, timeouts, truncated and non-JSON bodies,
primary and secondary rate limits, 429, deleted and locked issues, validation errors, a
token revoked mid-run) into the events feed or the comment POSTs, runs the loop for a
few cycles and checks the invariant from the outside (``test_reliability_support.verify``),
that no request went out before GitHub said it may (``fake.early_requests``), and that
failures cost a bounded number of requests (no retry storm).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_env
from test_reliability_support import (
    SLOW,
    USER,
    FaultyGitHub,
    SimClock,
    branch_files,
    build,
    faults_fired,
    figures,
    new_fake,
    spin,
    verify,
)

from symbiote_cli.core.errors import AuthError
from symbiote_cli.storage import layout

FEED = r"^/users/octo/events$"
POST = r"^/repos/octo/hello/issues/\d+/comments$"
CLI = [sys.executable, "-m", "symbiote_cli"]


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def fake(clock: SimClock) -> Iterator[FaultyGitHub]:
    server = new_fake(clock)
    try:
        yield server
    finally:
        server.stop()


def busy(fake: FaultyGitHub, count: int = 3) -> None:
    """Issues, a comment and a push by the user: what the loop acknowledges (or records)."""
    for number in range(1, count + 1):
        fake.issue_opened(USER, "octo/hello", number, f"bug {number}", "it breaks")
    fake.issue_comment(USER, "octo/hello", 1, "more detail")
    fake.push(USER, "octo/hello")



def run_case(
    fake: FaultyGitHub,
    fork: Path,
    origin: Path,
    clock: SimClock,
    inject: Callable[[FaultyGitHub], object],
    *,
    seconds: float = 240,
    allow_failed: bool = False,
    events: int = 3,
    **settings: Any,
) -> tuple[Any, Any, Any]:
    poller, seen = build(fake, fork, clock, **settings)
    poller.cycle()  # baseline: an empty feed
    busy(fake, events)
    inject(fake)
    poller.opts.deadline = clock.now() + seconds
    poller.run()
    verdict = verify(fake, origin, allow_failed=allow_failed)
    verdict.assert_ok()
    assert not fake.early_requests, [f"{r.method} {r.path}" for r in fake.early_requests]
    return verdict, poller, seen


# -------------------------------------------------------------------------- transient faults

TRANSIENT: dict[str, Callable[[FaultyGitHub], object]] = {
    # The events feed (reads: PyGithub retries them, else the cycle ends and the next one catches up).
    "feed-500-burst": lambda f: f.fail("GET", FEED, status=500, times=2),
    "feed-502-burst": lambda f: f.fail("GET", FEED, status=502, times=2),
    "feed-503-burst": lambda f: f.fail("GET", FEED, status=503, times=2),
    "feed-502-outage": lambda f: f.fail("GET", FEED, status=502, times=7),
    "feed-html-502": lambda f: f.fail("GET", FEED, status=502, non_json=True, times=2),
    "feed-connection-reset": lambda f: f.fail("GET", FEED, reset=True, times=4),
    "feed-read-timeout": lambda f: f.fail("GET", FEED, delay=1.5, times=1),
    "feed-truncated": lambda f: f.fail("GET", FEED, truncate=True, times=2),
    "feed-non-json-200": lambda f: f.fail("GET", FEED, non_json=True, times=2),
    # Comment POSTs (writes: never blindly retried; the marker decides).
    "post-500": lambda f: f.fail("POST", POST, status=500, times=1),
    "post-502": lambda f: f.fail("POST", POST, status=502, times=1),
    "post-503-burst": lambda f: f.fail("POST", POST, status=503, times=2),
    "post-html-502": lambda f: f.fail("POST", POST, status=502, non_json=True, times=1),
    "post-connection-reset": lambda f: f.fail("POST", POST, reset=True, times=2),
    "post-read-timeout-after-work": lambda f: f.answer_late("POST", POST, delay=1.5, times=1),
    "post-truncated-after-work": lambda f: f.fail("POST", POST, truncate=True, times=2),
    "post-non-json-201": lambda f: f.fail("POST", POST, non_json=True, times=1),
    "marker-check-500": lambda f: f.fail("GET", POST, status=500, times=2),
}


# Variants of a case the default run already covers: only in the full run (-m slow).
FULL_RUN_ONLY = {
    "feed-500-burst", "feed-502-burst", "feed-html-502", "post-500", "post-503-burst", "post-html-502",
    "feed-429", "post-secondary-403", "post-primary-403", "post-secondary-15min",
}


def cases(table: dict[str, Any]) -> list[Any]:
    return [pytest.param(name, marks=SLOW if name in FULL_RUN_ONLY else ()) for name in sorted(table)]


@pytest.mark.parametrize("name", cases(TRANSIENT))
def test_transient_faults_lose_and_duplicate_nothing(
    name: str, fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    verdict, _poller, _seen = run_case(fake, fork, bare_origin, clock, TRANSIENT[name])
    fired = faults_fired(fake)
    assert fired, "the fault never fired"
    assert verdict.acked == verdict.expected == 4
    figures("faults", case=name, faults=fired, events=verdict.events, duplicates=0, losses=0)


def test_a_long_outage_of_the_feed_does_not_end_the_run(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    """Cycles that cannot read the feed end with a warning; the loop goes on and catches up."""
    poller, seen = build(fake, fork, clock, http_retries=1)
    poller.cycle()
    busy(fake)
    fake.fail("GET", FEED, status=502, times=None)
    reports = spin(poller, clock, 4 * 60)
    assert [r.status for r in reports] == ["error"] * len(reports)
    assert len(reports) >= 4
    attempts = len(fake.requests_to("GET", FEED))
    assert attempts <= 1 + 2 * len(reports)  # PyGithub's retries per cycle, no storm
    assert all("502" in w for w in seen.warnings[-len(reports):])
    fake.clear_faults()
    spin(poller, clock, 3 * 60)
    poller.finish()
    assert poller.stats.exit_reason == "finished"
    verify(fake, bare_origin).assert_ok()
    figures("faults", case="feed-outage-5min", faults=faults_fired(fake), events=5, duplicates=0, losses=0)


def test_persistent_post_failures_are_recorded_failed_once_without_a_storm(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    fault = fake.fail("POST", POST, status=502, times=None)
    verdict, _poller, _seen = run_case(fake, fork, bare_origin, clock, lambda _f: None, allow_failed=True)
    assert verdict.failed == verdict.expected == 4
    posts = len(fake.requests_to("POST", POST))
    assert posts == fault.fired <= 3 * 4  # at most three attempts per event, once
    for record in verdict.records.values():
        for action in record.get("actions", []):
            assert action["status"] == "failed"
            assert "502" in action["detail"]
            assert action["status_code"] == 502
    figures("faults", case="post-502-persistent", faults=fault.fired, events=verdict.events, duplicates=0, losses=0)


# -------------------------------------------------------------------------- rate limits

LIMITS: dict[str, Callable[[FaultyGitHub], object]] = {
    "feed-secondary-403": lambda f: f.secondary_limit("GET", FEED, retry_after=1),
    "feed-429": lambda f: f.secondary_limit("GET", FEED, retry_after=1, status=429),
    "feed-primary-403": lambda f: f.primary_limit("GET", FEED, reset_in=1),
    "post-secondary-403": lambda f: f.secondary_limit("POST", POST, retry_after=1),
    "post-429": lambda f: f.secondary_limit("POST", POST, retry_after=1, status=429),
    "post-primary-403": lambda f: f.primary_limit("POST", POST, reset_in=1),
    # Longer than Symbiote blocks in a request (120 s): the cycle ends, the loop sleeps.
    "exhausted-15min": lambda f: f.exhaust_rate_limit(900),
    "feed-secondary-15min": lambda f: f.secondary_limit("GET", FEED, retry_after=900),
    "post-secondary-15min": lambda f: f.secondary_limit("POST", POST, retry_after=900),
    "post-429-15min": lambda f: f.secondary_limit("POST", POST, retry_after=900, status=429),
}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", cases(LIMITS))
def test_rate_limits_are_obeyed_and_the_loop_catches_up(
    name: str, fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    started = time.monotonic()
    verdict, poller, _seen = run_case(fake, fork, bare_origin, clock, LIMITS[name], seconds=1800)
    assert verdict.acked == verdict.expected == 4
    assert not fake.early_requests
    if "15min" in name:
        assert time.monotonic() - started < 30, "a long wait must end the cycle, not block in the request"
        assert any(s >= 800 for s in clock.slept), clock.slept
    assert poller.stats.exit_reason == "deadline reached"
    figures("faults", case=name, faults=faults_fired(fake), events=verdict.events, duplicates=0, losses=0)


def paced_bursts(fake: FaultyGitHub, fork: Path, origin: Path, clock: SimClock, bursts: int) -> None:
    """``bursts`` x 200 issues opened, at GitHub's own ceilings (the highest settings allowed)."""
    poller, seen = build(fake, fork, clock, writes_per_minute=80, writes_per_hour=500)
    poller.cycle()
    for burst in range(bursts):
        for number in range(1, 201):
            fake.issue_opened(USER, "octo/hello", burst * 200 + number, f"burst {burst} #{number}")
        spin(poller, clock, 4 * 60 if burst < bursts - 1 else 75 * 60 if bursts > 2 else 5 * 60)
    poller.finish()
    times = sorted(w.at for w in fake.writes)
    assert len(times) == 200 * bursts
    worst_minute = max(sum(1 for t in times if w - 60 < t <= w) for w in times)
    worst_hour = max(sum(1 for t in times if w - 3600 < t <= w) for w in times)
    assert worst_minute <= 80, worst_minute
    assert worst_hour <= 500, worst_hour
    assert fake.writes_in_window(60) <= 80
    assert not [r for r in fake.requests if r.status == 403], "GitHub's content limit was hit"
    assert any("write budget" in w for w in seen.warnings)  # the rest was carried to later cycles
    verdict = verify(fake, origin)
    verdict.assert_ok()
    assert verdict.acked == 200 * bursts
    figures("pacing", case=f"{bursts}x200-burst", events=verdict.events, writes=len(times),
            worst_minute=worst_minute, worst_hour=worst_hour, duplicates=0, losses=0)


def test_a_burst_of_200_events_is_paced_under_80_a_minute(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    paced_bursts(fake, fork, bare_origin, clock, 1)


@pytest.mark.parametrize("bursts", [pytest.param(3, marks=SLOW, id="600-in-the-first-hour")])
def test_three_bursts_stay_under_500_an_hour(
    bursts: int, fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    paced_bursts(fake, fork, bare_origin, clock, bursts)


def test_restarts_share_the_content_creation_limit(clock: SimClock, fork: Path, bare_origin: Path) -> None:
    server = new_fake(clock, content_limits=None)  # count, do not refuse
    try:
        first, _ = build(server, fork, clock)
        first.cycle()
        for number in range(1, 151):
            server.issue_opened(USER, "octo/hello", number, f"bug {number}")
        first.cycle()  # 60 acknowledgments (the default budget), then the process dies
        clock.advance(5)
        second, _ = build(server, fork, clock)  # the restart
        second.cycle()
        times = sorted(w.at for w in server.writes)
        worst_minute = max(sum(1 for t in times if w - 60 < t <= w) for w in times)
        assert worst_minute <= 80, f"{worst_minute} content writes within one minute"
    finally:
        server.stop()


class Killed(BaseException):
    """kill -9: nothing after it runs."""


@pytest.mark.xfail(
    strict=True,
    reason="the budget is seeded from stored writes only: the writes of a cycle killed before its commit are "
    "not stored, so a restart within the minute can exceed GitHub's 80 writes a minute; fix: also seed from "
    "the created_at of the user's own marked comments in the first feed page (they are in the feed whether "
    "or not the commit happened)",
)
def test_a_restart_after_a_kill_before_the_commit_shares_the_content_limit(
    clock: SimClock, fork: Path, bare_origin: Path
) -> None:
    server = new_fake(clock, content_limits=None)  # count, do not refuse
    try:
        first, _ = build(server, fork, clock)
        first.cycle()
        for number in range(1, 151):
            server.issue_opened(USER, "octo/hello", number, f"bug {number}")

        def killed(*_: Any, **__: Any) -> None:
            raise Killed

        first.storage.update = killed  # type: ignore[method-assign]
        with pytest.raises(Killed):
            first.cycle()  # 60 acknowledgments, then killed before its commit
        clock.advance(5)
        second, _ = build(server, fork, clock)
        second.cycle()
        times = sorted(w.at for w in server.writes)
        worst_minute = max(sum(1 for t in times if w - 60 < t <= w) for w in times)
        assert worst_minute <= 80, f"{worst_minute} content writes within one minute"
        verify(server, bare_origin, settled=False).assert_ok()
    finally:
        server.stop()


# -------------------------------------------------------------------------- permanent failures


def _deleted_issue(f: FaultyGitHub) -> str:
    f.mark_deleted("octo/hello", 1)
    return "/repos/octo/hello/issues/1"


def _deleted_repo(f: FaultyGitHub) -> str:
    f.add_repo("octo/gone")
    f.issue_opened(USER, "octo/gone", 1, "doomed")
    f.mark_deleted("octo/gone")
    return "/repos/octo/gone/issues/1"


def _locked(f: FaultyGitHub) -> str:
    f.add_repo("alice/proj")
    f.issue_opened(USER, "alice/proj", 1, "please")
    f.lock("alice/proj", 1)
    return "/repos/alice/proj/issues/1"


def _unprocessable(f: FaultyGitHub) -> str:
    f.fail("POST", r"^/repos/octo/hello/issues/1/comments$", status=422, times=None)
    return "/repos/octo/hello/issues/1"


PERMANENT: dict[str, tuple[Callable[[FaultyGitHub], str], int, str]] = {
    "deleted-issue-410": (_deleted_issue, 410, "deleted"),
    "deleted-repo-404": (_deleted_repo, 404, "Not Found"),
    "locked-issue-403": (_locked, 403, "locked"),
    "validation-422": (_unprocessable, 422, "Unprocessable"),
}


@pytest.mark.parametrize("name", sorted(PERMANENT))
def test_permanent_failures_are_recorded_once_with_the_reason(
    name: str, fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    prepare, status, words = PERMANENT[name]
    poller, _seen = build(fake, fork, clock)
    poller.cycle()
    fake.issue_opened(USER, "octo/hello", 1, "first")
    fake.issue_opened(USER, "octo/hello", 2, "second")
    where = prepare(fake)
    poller.cycle()
    first = len(fake.requests_to("*", rf"^{where}(/|$)"))
    assert 1 <= first <= 2  # look for the marker, maybe try once: no retry storm
    poller.opts.deadline = clock.now() + 10 * 60
    poller.run()
    assert len(fake.requests_to("*", rf"^{where}(/|$)")) == first  # never again in later cycles
    verdict = verify(fake, bare_origin, allow_failed=True)
    verdict.assert_ok()
    assert verdict.failed == 1
    failed = [a for r in verdict.records.values() for a in r.get("actions", []) if a["status"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["status_code"] == status
    assert words in failed[0]["detail"]
    figures("faults", case=name, faults=1, events=verdict.events, duplicates=0, losses=0)


def test_revoked_token_mid_run_stops_flushes_and_makes_no_storm(
    fake: FaultyGitHub, fork: Path, bare_origin: Path, clock: SimClock
) -> None:
    poller, _seen = build(fake, fork, clock)
    poller.cycle()
    busy(fake, 4)
    revoked_at: list[int] = []

    def revoke_after_second_ack(method: str, path: str, status: int) -> None:
        if method == "POST" and status == 201 and not revoked_at and len(fake.writes) >= 2:
            fake.revoke(fake.token or "")
            revoked_at.append(len(fake.requests))

    fake.hooks.append(revoke_after_second_ack)
    poller.opts.deadline = clock.now() + 10 * 60
    with pytest.raises(AuthError, match="GH_PAT"):
        poller.run()
    assert revoked_at
    assert len(fake.requests) - revoked_at[0] <= 2  # one 401, then stop
    session = layout.load_session(poller.storage, USER)
    assert session is not None
    assert session.status.value == "failed"
    # What was done before the token died is recorded; the rest stays ahead of the cursor.
    verdict = verify(fake, bare_origin, settled=False)
    verdict.assert_ok()
    assert verdict.acked == 2
    assert verdict.pending == 3
    figures("faults", case="revoked-mid-run", faults=1, events=verdict.events, duplicates=0, losses=0)


def test_revoked_token_mid_run_cli_exits_2_with_one_clear_line(
    fork: Path, bare_origin: Path, tmp_path: Path
) -> None:
    server = new_fake()
    try:
        env = make_env(server, tmp_path / "home", SYMBIOTE_SECONDS_BETWEEN_WRITES="0",
                       SYMBIOTE_SECONDS_BETWEEN_REQUESTS="0")
        first = subprocess.run([*CLI, "poll", "--once"], cwd=fork, env=env, capture_output=True, text=True,
                               timeout=60, check=False)
        assert first.returncode == 0, first.stderr
        busy(server, 4)
        revoked_at: list[int] = []

        def revoke(method: str, path: str, status: int) -> None:
            if method == "POST" and not revoked_at:
                server.revoke(server.token or "")
                revoked_at.append(len(server.requests))

        server.hooks.append(revoke)
        done = subprocess.run([*CLI, "poll", "--interval", "0.2"], cwd=fork, env=env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, done.stderr
        assert "GH_PAT" in lines[0]
        assert "rejected" in lines[0]
        assert "Traceback" not in done.stderr
        assert (server.token or "?") not in done.stdout + done.stderr
        assert len(server.requests) - revoked_at[0] <= 2  # one 401, then stop: no storm
        files = branch_files(bare_origin)
        assert files[f"users/{USER}/session.json"]["status"] == "failed"  # state flushed on the way out
        verdict = verify(server, bare_origin, settled=False)
        verdict.assert_ok()
        assert verdict.acked == 1
    finally:
        server.stop()
    figures("faults", case="revoked-mid-run-cli", faults=1, events=6, duplicates=0, losses=0)
