"""The poll loop's second source, in-process: ``tests/fakes.py``'s in-memory GitHub, real git
storage, a fake clock (the HTTP fake and the real CLI: ``tests/test_notifications_e2e.py``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fakes import InMemoryGitHub

from symbiote_cli.core.clock import FakeClock, iso
from symbiote_cli.core.errors import GitHubError, RateLimitedError
from symbiote_cli.core.models import ActionKind, ActionRequest, AuthMode, Item, Notification, Source
from symbiote_cli.core.pacing import WriteBudget
from symbiote_cli.core.rules import builtin_planner
from symbiote_cli.flows.execute import Executor
from symbiote_cli.flows.poll import CycleStatus, NullObserver, Poller, PollOptions
from symbiote_cli.github.registry import KernelRegistry
from symbiote_cli.storage import layout
from symbiote_cli.storage.branch import Storage

BOTH = frozenset({Source.EVENTS, Source.NOTIFICATIONS})


class AckReviews:
    """Comments once on every review request and mention (what a rules file would say)."""

    def plan(self, event: Item, user: str) -> list[ActionRequest]:
        if not isinstance(event, Notification) or event.reason not in ("review_requested", "mention"):
            return []
        assert event.issue_number is not None
        return [
            ActionRequest(
                kind=ActionKind.COMMENT,
                repo=event.repo_name,
                issue_number=event.issue_number,
                body=f"on it ({event.reason})",
                idempotency_key=f"ack-{event.id}",
                event_id=event.id,
                private=event.private,
                auth=AuthMode.USER,
            )
        ]


class Warnings(NullObserver):
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


class Notifier:
    """Threads as GitHub lists them: newest update first, ``Last-Modified`` = newest update."""

    def __init__(self, gh: InMemoryGitHub, clock: FakeClock) -> None:
        self.gh = gh
        self.clock = clock
        self.next_id = 100

    def notify(self, repo: str, number: int, reason: str, *, kind: str = "PullRequest", private: bool = False) -> str:
        path = "pulls" if kind == "PullRequest" else "issues"
        url = f"https://api.github.com/repos/{repo}/{path}/{number}"
        updated = iso(self.clock.now())
        existing = next((t for t in self.gh.notifications if t["subject"]["url"] == url), None)
        if existing is None:
            self.next_id += 1
            existing = {
                "id": str(self.next_id),
                "repository": {"full_name": repo, "private": private, "html_url": f"https://github.com/{repo}"},
                "subject": {"title": f"secret plans {number}", "url": url, "type": kind, "latest_comment_url": None},
            }
        else:
            self.gh.notifications.remove(existing)
        existing.update(reason=reason, unread=True, updated_at=updated)
        self.gh.notifications.insert(0, existing)
        self.gh.notifications_last_modified = updated
        return str(existing["id"])


def make(
    tmp: Path, fork: Path, gh: InMemoryGitHub, clock: FakeClock, **options: Any
) -> tuple[Poller, Warnings]:
    storage = Storage(fork, clock=clock).open()
    observer = Warnings()
    opts = PollOptions(user="octo", sources=options.pop("sources", BOTH), **options)
    poller = Poller(
        opts,
        client=gh,
        storage=storage,
        clock=clock,
        executor=Executor(gh, clock),
        planner=AckReviews(),
        registry=KernelRegistry(None, clock),
        budget=WriteBudget(clock, 60, 450),
        observer=observer,
        stop=threading.Event(),
    )
    poller.start()
    return poller, observer


@pytest.fixture
def world() -> tuple[InMemoryGitHub, FakeClock, Notifier]:
    clock = FakeClock()
    gh = InMemoryGitHub(login="octo")
    return gh, clock, Notifier(gh, clock)


def comments(gh: InMemoryGitHub, repo: str, number: int) -> list[str]:
    return [str(c["body"]) for c in gh.comments[(repo, number)]]


def test_baseline_then_review_request_and_mention_acted_on_once(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    notes.notify("acme/app", 1, "review_requested")  # before the first run: not acted on
    poller, observer = make(tmp_path, fork, gh, clock)
    first = poller.cycle()
    assert first.status is CycleStatus.BASELINE
    assert not gh.comments
    assert any("baseline" in w for w in observer.warnings)

    clock.advance(60)
    notes.notify("acme/app", 2, "review_requested")
    notes.notify("acme/lib", 3, "mention", kind="Issue")
    report = poller.cycle()
    assert report.notifications == 2
    assert report.handled == 2
    assert len(comments(gh, "acme/app", 2)) == 1
    assert len(comments(gh, "acme/lib", 3)) == 1
    assert not comments(gh, "acme/app", 1)
    assert poller.stats.notifications_by_reason == {"review_requested": 1, "mention": 1}

    # A read with news is followed by an unconditional one (an update in the same second as
    # Last-Modified must not hide behind a 304): the same notifications again, nothing acted on.
    stored = layout.load_notification_cursor(poller.storage, "octo")
    assert stored is not None
    assert stored.last_modified is None
    clock.advance(60)
    again = poller.cycle()
    assert again.notifications == 0
    assert gh.notification_reads[-1] == (None, 200)
    assert len(gh.comments[("acme/app", 2)]) == 1
    assert len(gh.comments[("acme/lib", 3)]) == 1
    stored = layout.load_notification_cursor(poller.storage, "octo")
    assert stored is not None
    assert stored.last_modified == gh.notifications_last_modified  # now kept: the next read is conditional

    # A restart (a new process) does not act again either: the position is on the branch.
    poller.finish()
    restarted, _ = make(tmp_path, fork, gh, clock)
    clock.advance(60)
    assert restarted.cycle().notifications == 0
    assert sum(len(v) for v in gh.comments.values()) == 2


def test_a_thread_updated_again_is_new_the_same_update_is_not(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.cycle()  # baseline of an empty list
    clock.advance(60)
    thread = notes.notify("acme/app", 5, "mention", kind="Issue")
    poller.cycle()
    clock.advance(60)
    assert notes.notify("acme/app", 5, "mention", kind="Issue") == thread  # a new mention on the same issue
    report = poller.cycle()
    assert report.notifications == 1
    assert len(comments(gh, "acme/app", 5)) == 2  # one per update, each with its own key
    stored = layout.load_notification_cursor(poller.storage, "octo")
    assert stored is not None
    assert stored.threads[thread] == iso(clock.now())


def test_idle_list_is_asked_with_if_modified_since_and_commits_nothing(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    notes.notify("acme/app", 1, "subscribed")
    gh.events["octo"] = []
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.cycle()
    commits = poller.stats.storage_commits
    reads = len(gh.notification_reads)
    for _ in range(5):
        clock.advance(60)
        assert poller.cycle().status is CycleStatus.IDLE
    assert poller.stats.storage_commits == commits
    assert gh.notification_reads[reads:] == [(gh.notifications_last_modified, 304)] * 5


def test_a_403_turns_the_source_off_once_and_events_go_on(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, _ = world
    refused = GitHubError(
        "GitHub answered 403 to GET /notifications: Resource not accessible by personal access token", 403
    )
    gh.fail_next["list_notifications"].append(refused)
    poller, observer = make(tmp_path, fork, gh, clock)
    for _ in range(3):
        poller.cycle()
        clock.advance(60)
    assert gh.calls.count("list_notifications") == 1
    assert gh.calls.count("list_events") == 3
    refusals = [w for w in observer.warnings if "refused to list notifications" in w]
    assert len(refusals) == 1
    assert poller.stats.sources == ("events",)
    assert poller.stats.source_warnings == refusals


def test_notifications_alone_refused_end_the_run(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, _ = world
    gh.fail_next["list_notifications"].append(GitHubError("GitHub answered 403 to GET /notifications", 403))
    poller, _ = make(tmp_path, fork, gh, clock, sources=frozenset({Source.NOTIFICATIONS}))
    with pytest.raises(GitHubError, match="only source"):
        poller.cycle()


def test_budget_shared_with_events_carries_notifications_over(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    poller, observer = make(tmp_path, fork, gh, clock)
    poller.budget = WriteBudget(clock, 2, 450)
    poller.cycle()
    clock.advance(60)
    for number in range(1, 6):
        notes.notify("acme/app", number, "review_requested")
    report = poller.cycle()
    assert report.handled == 2
    assert report.deferred == 3
    assert report.status is CycleStatus.BACKLOG
    stored = layout.load_notification_cursor(poller.storage, "octo")
    assert stored is not None
    assert stored.last_modified is None  # read again next time, not a 304
    for _ in range(3):
        clock.advance(60)
        poller.cycle()
    done = [n for n in range(1, 6) if comments(gh, "acme/app", n)]
    assert done == [1, 2, 3, 4, 5]
    assert all(len(comments(gh, "acme/app", n)) == 1 for n in done)
    assert any("notifications carried" in w for w in observer.warnings)


def test_backfill_acts_on_what_is_already_there(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    notes.notify("acme/app", 1, "review_requested")
    poller, _ = make(tmp_path, fork, gh, clock, backfill=True)
    poller.cycle()
    assert len(comments(gh, "acme/app", 1)) == 1


def test_private_notification_record_is_redacted_on_the_branch(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.cycle()
    clock.advance(60)
    notes.notify("acme/secret-repo", 9, "mention", kind="Issue", private=True)
    poller.cycle()
    poller.finish()
    assert len(comments(gh, "acme/secret-repo", 9)) == 1
    records = layout.list_processed(poller.storage, "octo")
    assert [(r.type, r.notification, r.private) for r in records] == [("Notification", "mention", True)]
    paths = poller.storage.list_paths("")
    assert layout.notifications_path("octo") in paths
    for path in paths:
        text = str(poller.storage.read_json(path))
        assert "secret-repo" not in text
        assert "secret plans" not in text


def test_both_sources_share_one_commit_per_cycle(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    event = {
        "id": "1",
        "type": "IssuesEvent",
        "actor": {"login": "octo"},
        "repo": {"name": "acme/app"},
        "payload": {"action": "opened", "issue": {"number": 40}},
    }
    gh.events["octo"] = [event]
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.cycle()  # both baselines, one commit
    clock.advance(60)
    gh.events["octo"] = [{**event, "id": "2", "payload": {"action": "opened", "issue": {"number": 41}}}, event]
    notes.notify("acme/app", 42, "review_requested")
    before = poller.stats.storage_commits
    report = poller.cycle()
    assert report.new == 2
    assert report.notifications == 1
    assert poller.stats.storage_commits == before + 1
    records = layout.list_processed(poller.storage, "octo")
    assert sorted(r.type for r in records) == ["IssuesEvent", "Notification"]
    assert layout.load_cursor(poller.storage, "octo") is not None
    assert layout.load_notification_cursor(poller.storage, "octo") is not None


def test_without_a_rules_file_notifications_are_recorded_and_nothing_is_done(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.planner = builtin_planner()
    poller.cycle()
    clock.advance(60)
    notes.notify("acme/app", 7, "review_requested")
    notes.notify("acme/app", 8, "mention", kind="Issue")
    poller.cycle()
    assert not gh.comments or not any(gh.comments.values())
    records = layout.list_processed(poller.storage, "octo")
    assert sorted((r.notification, r.route.value) for r in records) == [
        ("mention", "ignore"),
        ("review_requested", "ignore"),
    ]


def test_the_apps_own_comment_coming_back_as_a_notification_is_not_answered(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    """A comment the app posts on a thread of the user's notifies them; answering it would loop."""
    gh, clock, notes = world
    poller, _ = make(tmp_path, fork, gh, clock)
    poller.cycle()
    clock.advance(60)
    thread = notes.notify("acme/app", 2, "review_requested")
    poller.cycle()
    assert len(comments(gh, "acme/app", 2)) == 1
    ours = gh.comments[("acme/app", 2)][0]
    clock.advance(60)
    notes.notify("acme/app", 2, "review_requested")  # GitHub: the thread updated by our comment
    updated = next(t for t in gh.notifications if t["id"] == thread)
    updated["subject"]["latest_comment_url"] = f"https://api.github.com/repos/acme/app/issues/comments/{ours['id']}"
    report = poller.cycle()
    assert report.notifications == 1
    assert len(comments(gh, "acme/app", 2)) == 1
    assert gh.calls.count("get_issue_comment") == 1
    newest = layout.list_processed(poller.storage, "octo")[0]
    assert newest.route.value == "ignore"
    assert "own comment" in newest.reason

    # Someone else's comment on the same thread is a new update to act on.
    clock.advance(60)
    other = gh.create_comment("acme/app", 2, "@octo any news?")
    notes.notify("acme/app", 2, "review_requested")
    updated["subject"]["latest_comment_url"] = f"https://api.github.com/repos/acme/app/issues/comments/{other['id']}"
    poller.cycle()
    assert len([b for b in comments(gh, "acme/app", 2) if "symbiote:" in b]) == 2


def test_a_rate_limit_mid_cycle_keeps_what_was_done_and_does_not_dispatch_twice(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world

    class Dispatch:
        def plan(self, event: Item, user: str) -> list[ActionRequest]:
            if not isinstance(event, Notification):
                return []
            return [
                ActionRequest(
                    kind=ActionKind.DISPATCH, repo="octo/symbiote", workflow="triage.yml", ref="main",
                    idempotency_key=f"triage-{event.id}", event_id=event.id, auth=AuthMode.USER,
                )
            ]

    poller, _ = make(tmp_path, fork, gh, clock)
    poller.planner = Dispatch()
    poller.cycle()
    clock.advance(60)
    notes.notify("acme/app", 1, "review_requested")
    clock.advance(1)
    notes.notify("acme/app", 2, "review_requested")
    gh.fail_next["dispatch_workflow"] = [None, RateLimitedError("secondary rate limit", clock.now() + 60)]
    report = poller.cycle()
    assert report.status is CycleStatus.RATE_LIMITED
    assert len(gh.dispatches) == 1
    for _ in range(3):
        clock.advance(120)
        poller.cycle()
    assert len(gh.dispatches) == 2  # one per notification, the first never again
    assert len(layout.list_processed(poller.storage, "octo")) == 2


def test_deferred_old_updates_survive_a_restart_and_are_not_pruned_away(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    """--backfill over updates older than the cursor's 30-day memory, with a budget of 2 a minute."""
    gh, clock, notes = world
    for number in range(1, 7):
        notes.notify("acme/app", number, "review_requested")
        clock.advance(60)
    clock.advance(40 * 86400)
    poller, _ = make(tmp_path, fork, gh, clock, backfill=True)
    poller.budget = WriteBudget(clock, 2, 450)
    poller.cycle()
    assert sum(bool(comments(gh, "acme/app", n)) for n in range(1, 7)) == 2
    poller.finish()
    for _ in range(4):  # each a new run, as in Actions
        clock.advance(60)
        restarted, _ = make(tmp_path, fork, gh, clock, backfill=True)
        restarted.budget = WriteBudget(clock, 2, 450)
        restarted.cycle()
        restarted.finish()
    assert [len(comments(gh, "acme/app", n)) for n in range(1, 7)] == [1] * 6


def test_more_than_a_page_of_new_notifications_is_read_page_by_page_and_a_gap_is_told(
    tmp_path: Path, fork: Path, world: tuple[InMemoryGitHub, FakeClock, Notifier]
) -> None:
    gh, clock, notes = world
    poller, observer = make(tmp_path, fork, gh, clock, max_pages=2)
    poller.cycle()
    clock.advance(60)
    for number in range(1, 121):  # 120 new updates: 3 pages of 50, the cap is 2
        notes.notify("acme/app", number, "subscribed", kind="Issue")
        clock.advance(1)
    report = poller.cycle()
    assert report.notifications == 100
    assert report.gap
    assert any("gap: more than 2 pages of notifications" in w for w in observer.warnings)
    assert [page for _, page in gh.notification_reads[-2:]] == [200, 200]
