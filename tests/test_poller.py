"""The poll loop in-process: fake GitHub on loopback, real git storage, fake clock."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from fakegithub import FakeGitHub
from test_reliability_support import Recorder

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import AuthError, SupersededError
from symbiote_cli.core.models import Route
from symbiote_cli.flows.poll import Poller
from symbiote_cli.settings import Settings
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage
from symbiote_cli.wiring import PollRequest, build_poller, make_client


def settings_for(fake: FakeGitHub, fork: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "gh_pat": fake.token,
        "api_url": fake.url,
        "storage_repo": fork,
        "seconds_between_writes": 0,
        "seconds_between_requests": 0,
        "http_retries": 2,
        **extra,
    }
    return Settings.model_validate(values)


def make_poller(
    fake: FakeGitHub,
    fork: Path,
    clock: FakeClock | None = None,
    *,
    req: PollRequest | None = None,
    **extra: Any,
) -> tuple[Poller, Recorder, FakeClock]:
    clock = clock or FakeClock()
    settings = settings_for(fake, fork, **extra)
    storage = Storage(fork, clock=clock).open()
    observer = Recorder()
    poller = build_poller(
        settings,
        req or PollRequest(user="octo"),
        client=make_client(settings),
        storage=storage,
        clock=clock,
        observer=observer,
        stop=threading.Event(),
    )
    poller.start()
    return poller, observer, clock


@pytest.fixture
def hello(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.add_repo("octo/hello")
    return fake_github


def acks(fake: FakeGitHub, repo: str, number: int) -> list[Any]:
    return [c for c in fake.comments_on(repo, number) if "<!-- symbiote:" in c.body]


def test_first_run_takes_a_baseline_and_acts_on_nothing_older(hello: FakeGitHub, fork: Path) -> None:
    hello.issue_opened("octo", "octo/hello", 1, "old issue")
    poller, seen, _ = make_poller(hello, fork)
    report = poller.cycle()
    assert report.status == "baseline"
    assert not hello.comments
    cursor = layout.load_cursor(poller.storage, "octo")
    assert cursor is not None
    assert cursor.last_event_id == hello.events("octo")[-1]["id"]
    assert any("baseline" in w for w in seen.warnings)


def test_backfill_acts_on_existing_events(hello: FakeGitHub, fork: Path) -> None:
    hello.issue_opened("octo", "octo/hello", 1, "old issue")
    poller, _, _ = make_poller(hello, fork, req=PollRequest(user="octo", backfill=True))
    poller.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 1


def test_new_events_acknowledged_once_no_self_loop_and_idle_polls_are_free(hello: FakeGitHub, fork: Path) -> None:
    poller, seen, _ = make_poller(hello, fork)
    poller.cycle()  # baseline (empty feed)
    hello.issue_opened("octo", "octo/hello", 1, "bug")
    hello.issue_comment("octo", "octo/hello", 1, "more detail")
    hello.pr_opened("octo", "octo/hello", 2, "fix")
    hello.push("octo", "octo/hello")
    poller.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 2  # the issue and the comment
    assert len(acks(hello, "octo/hello", 2)) == 1
    # Our three acknowledgments arrive in the feed as the user's own IssueCommentEvents.
    report = poller.cycle()
    assert report.new == 3
    assert [d.route for d in seen.decisions[-3:]] == [Route.IGNORE] * 3
    assert len(hello.comments) == 4  # 1 human comment + 3 acks, nothing more
    before_points = hello.points_used
    before_commits = poller.storage.commits_made
    for _ in range(5):
        idle = poller.cycle()
        assert idle.status == "idle"
    assert hello.points_used == before_points  # every idle poll answered 304
    assert poller.storage.commits_made == before_commits  # and nothing committed
    push = [d for d in seen.decisions if d.type == "PushEvent"]
    assert push[0].route is Route.IGNORE


def test_restart_never_reacts(hello: FakeGitHub, fork: Path) -> None:
    poller, _, clock = make_poller(hello, fork)
    poller.cycle()
    hello.issue_opened("octo", "octo/hello", 1, "bug")
    poller.cycle()
    poller.finish()
    again, _, _ = make_poller(hello, fork, clock)
    again.cycle()
    again.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 1


def test_crash_between_posting_and_storing_does_not_double_post(hello: FakeGitHub, fork: Path) -> None:
    poller, _, clock = make_poller(hello, fork)
    poller.cycle()
    hello.issue_opened("octo", "octo/hello", 1, "bug")

    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("killed before the commit")

    poller.storage.update = boom  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        poller.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 1
    clock.advance(5)  # the restart comes later than the crashed session's start
    again, seen, _ = make_poller(hello, fork, clock)
    again.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 1
    assert [a.status.value for a in seen.actions] == ["already_done"]


def test_kernel_repos_are_left_to_the_kernel(fake_github: FakeGitHub, fork: Path) -> None:
    fake_github.add_repo("octo/kernel-served", files={".github/.ubiquity-os.config.yml": "plugins: []\n"})
    fake_github.add_repo("octo/listed")
    poller, seen, _ = make_poller(fake_github, fork, kernel_repos=["octo/listed"])
    poller.cycle()
    fake_github.issue_opened("octo", "octo/kernel-served", 1)
    fake_github.issue_opened("octo", "octo/listed", 1)
    poller.cycle()
    assert [d.route for d in seen.decisions] == [Route.KERNEL, Route.KERNEL]
    assert not fake_github.comments
    registry = layout.load_registry(poller.storage)
    assert registry["octo/kernel-served"].kernel
    # The lookup is cached: a second event in the same repo makes no new probe.
    probes = len(fake_github.requests_to("GET", r"/contents/"))
    fake_github.issue_opened("octo", "octo/kernel-served", 2)
    poller.cycle()
    assert len(fake_github.requests_to("GET", r"/contents/")) == probes


def test_owner_kernel_repo_counts(fake_github: FakeGitHub, fork: Path) -> None:
    fake_github.add_repo("octo/.ubiquity-os")
    fake_github.add_repo("octo/app")
    poller, seen, _ = make_poller(fake_github, fork)
    poller.cycle()
    fake_github.issue_opened("octo", "octo/app", 1)
    poller.cycle()
    assert seen.decisions[0].route is Route.KERNEL
    assert "owner has a .ubiquity-os repository" in seen.decisions[0].reason


def test_private_repo_acted_with_user_token_and_absent_from_branch(
    fake_github: FakeGitHub, fork: Path, bare_origin: Path
) -> None:
    fake_github.add_repo("octo/secret-plans", private=True)
    poller, seen, _ = make_poller(fake_github, fork)
    poller.cycle()
    fake_github.issue_opened("octo", "octo/secret-plans", 1, "Top secret title", "classified body")
    poller.cycle()
    poller.finish()
    assert seen.decisions[0].route is Route.USER
    assert len(acks(fake_github, "octo/secret-plans", 1)) == 1
    history = subprocess.run(
        ["git", "log", "-p", "--all"], cwd=bare_origin, capture_output=True, text=True, check=True
    ).stdout
    assert "__STORAGE__" in subprocess.run(
        ["git", "branch", "-a"], cwd=bare_origin, capture_output=True, text=True, check=True
    ).stdout
    for secret in ("secret-plans", "Top secret title", "classified body", fake_github.token or "x"):
        assert secret not in history


def test_pages_are_read_oldest_first_when_all_new(hello: FakeGitHub, fork: Path) -> None:
    poller, seen, _ = make_poller(hello, fork)
    poller.cycle()
    for number in range(1, 151):
        hello.watch("octo", "octo/hello") if number % 2 else hello.push("octo", "octo/hello")
    poller.cycle()
    ids = [int(d.event_id) for d in seen.decisions]
    assert len(ids) == 150
    assert ids == sorted(ids)
    assert len(hello.requests_to("GET", r"/users/octo/events")) == 3  # baseline + 2 pages
    assert not seen.warnings[1:]


def test_gap_warning_when_cursor_fell_out_of_the_window(hello: FakeGitHub, fork: Path) -> None:
    poller, seen, _ = make_poller(hello, fork)
    hello.push("octo", "octo/hello")
    poller.cycle()
    for _ in range(320):
        hello.push("octo", "octo/hello")
    report = poller.cycle()
    assert report.gap
    assert report.handled == 300
    assert any(w.startswith("gap:") for w in seen.warnings)


def test_write_budget_carries_events_to_later_cycles(hello: FakeGitHub, fork: Path) -> None:
    poller, _seen, clock = make_poller(hello, fork, writes_per_minute=2)
    poller.cycle()
    for number in range(1, 6):
        hello.issue_opened("octo", "octo/hello", number)
    first = poller.cycle()
    assert first.handled == 2
    assert first.deferred == 3
    assert first.status == "backlog"
    # With a backlog the ETag must not be sent (a 304 would hide the rest).
    clock.advance(61)
    second = poller.cycle()
    last_events_call = hello.requests_to("GET", r"/users/octo/events")[-1]
    assert "if-none-match" not in last_events_call.headers
    assert second.handled >= 2
    clock.advance(61)
    poller.cycle()
    clock.advance(61)
    poller.cycle()
    for number in range(1, 6):
        assert len(acks(hello, "octo/hello", number)) == 1
    assert hello.writes_in_window(3600) == 5


def test_poll_interval_header_is_obeyed(fake_github: FakeGitHub, fork: Path) -> None:
    fake_github.poll_interval = 120
    poller, _, clock = make_poller(fake_github, fork, interval=30)
    poller.opts.deadline = clock.now() + 600
    poller.run()
    assert clock.slept
    assert min(clock.slept[:-1]) >= 120


def test_idle_hour_costs_no_rate_limit_and_only_heartbeat_commits(hello: FakeGitHub, fork: Path) -> None:
    poller, _, clock = make_poller(hello, fork)
    poller.cycle()
    commits = poller.storage.commits_made
    points = hello.points_used
    poller.opts.deadline = clock.now() + 3600
    poller.run()
    assert hello.points_used == points
    assert poller.stats.cycles >= 60
    # heartbeats (every 900 s) and the final session end: a handful, not one per cycle
    assert poller.storage.commits_made - commits <= 5


def test_revoked_token_stops_with_auth_error_and_flushes(hello: FakeGitHub, fork: Path) -> None:
    poller, _, _ = make_poller(hello, fork)
    poller.cycle()
    hello.issue_opened("octo", "octo/hello", 1)
    hello.revoke(hello.token or "")
    with pytest.raises(AuthError):
        poller.run()
    session = layout.load_session(poller.storage, "octo")
    assert session is not None
    assert session.status.value == "failed"


def test_a_newer_session_supersedes_the_poller(hello: FakeGitHub, fork: Path) -> None:
    first, _, clock = make_poller(hello, fork)
    first.cycle()
    clock.advance(1)
    second, _, _ = make_poller(hello, fork, clock)
    hello.issue_opened("octo", "octo/hello", 1)
    first.opts.deadline = clock.now() + 300  # bounded even if the test fails
    with pytest.raises(SupersededError):
        first.run()
    second.cycle()
    assert len(acks(hello, "octo/hello", 1)) == 1
    stored = layout.load_session(second.storage, "octo")
    assert stored is not None
    assert second.session is not None
    assert stored.id == second.session.id


def test_an_older_session_does_not_start_over_a_newer_one(hello: FakeGitHub, fork: Path) -> None:
    clock = FakeClock()
    make_poller(hello, fork, clock, req=PollRequest(user="octo", session_id="b" * 32))
    with pytest.raises(SupersededError):
        make_poller(hello, fork, clock, req=PollRequest(user="octo", session_id="a" * 32))


def test_dry_run_writes_nothing(hello: FakeGitHub, fork: Path, bare_origin: Path) -> None:
    poller, seen, _ = make_poller(hello, fork, req=PollRequest(user="octo", dry_run=True, backfill=True))
    tip = poller.storage.tip()
    hello.issue_opened("octo", "octo/hello", 1)
    poller.cycle()
    poller.finish()
    assert not hello.comments
    assert [a.status.value for a in seen.actions] == ["planned"]
    assert poller.storage.tip() == tip


def test_events_with_nothing_to_do_cost_no_kernel_lookup(hello: FakeGitHub, fork: Path) -> None:
    poller, _, _ = make_poller(hello, fork)
    poller.cycle()
    hello.push("octo", "octo/hello")
    hello.watch("octo", "octo/hello")
    poller.cycle()
    assert not hello.requests_to("GET", r"/contents/")
    assert not hello.requests_to("GET", r"/repos/octo/\.ubiquity-os$")
