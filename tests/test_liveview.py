"""The live terminal view and progress bars, rendered to a recording rich Console."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from symbiote_cli.cli.liveview import LiveObserver, ProgressBar, close_observer, make_observer, progress, track
from symbiote_cli.cli.output import LineObserver
from symbiote_cli.core.models import (
    ActionKind,
    ActionRequest,
    ActionResult,
    ActionStatus,
    Event,
    Notification,
    Route,
    RouteDecision,
)
from symbiote_cli.flows.poll import CycleReport
from symbiote_cli.github.client import GitHubClient

NOW = 1_767_225_600.0


def console(terminal: bool = False) -> Console:
    return Console(record=True, width=100, force_terminal=terminal, color_system=None, file=io.StringIO())


def text_of(observer: LiveObserver) -> str:
    out = console()
    out.print(observer.render())
    return " ".join(out.export_text().replace("│", " ").split())


def event(repo: str = "octo/hello", public: bool = True, event_id: str = "40000000001") -> Event:
    return Event.model_validate(
        {
            "id": event_id,
            "type": "IssuesEvent",
            "actor": {"login": "octo"},
            "repo": {"name": repo},
            "payload": {"action": "opened", "issue": {"number": 7}},
            "public": public,
        }
    )


def notification(reason: str, thread: str, repo: str = "octo/hello", private: bool = False) -> Notification:
    return Notification.model_validate(
        {
            "id": thread,
            "reason": reason,
            "updated_at": "2026-01-02T03:04:05Z",
            "subject": {
                "title": "Secret launch date",
                "type": "Issue",
                "url": f"https://api.github.com/repos/{repo}/issues/3",
            },
            "repository": {"full_name": repo, "private": private},
        }
    )


def decision(ev: Event | Notification, route: Route) -> RouteDecision:
    return RouteDecision(event_id=ev.id, type=ev.type, repo=ev.repo_name, route=route, reason="because")


def act(observer: LiveObserver, ev: Event, status: ActionStatus, url: str | None = None, **kw: Any) -> None:
    request = ActionRequest(
        kind=ActionKind.COMMENT,
        repo=ev.repo_name,
        issue_number=7,
        body="hi",
        idempotency_key=f"ack-{ev.id}",
        private=ev.private,
        **kw,
    )
    result = ActionResult(
        idempotency_key=request.idempotency_key,
        kind=request.kind,
        repo=request.repo,
        status=status,
        detail="comment posted",
        url=url,
        at=NOW,
    )
    observer.acted(ev, request, result)


def client_with_rate() -> GitHubClient:
    client = GitHubClient("ghp_x", "https://api.github.com")
    client.rate.update({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4987", "x-ratelimit-reset": "0"})
    return client


def test_live_view_shows_polls_routes_actions_rate_and_commits() -> None:
    clock = {"now": NOW}
    observer = LiveObserver(console(), client=client_with_rate(), interval=60, now=lambda: clock["now"], live=False)
    assert "never" in text_of(observer)
    observer.cycle_started(1)
    assert "polling..." in text_of(observer)
    first, second = event(), event(event_id="40000000002")
    observer.decided(first, decision(first, Route.APP))
    observer.decided(second, decision(second, Route.IGNORE))
    act(observer, first, ActionStatus.DONE, url="https://github.com/octo/hello/issues/7#issuecomment-1")
    observer.cycle_finished(CycleReport(number=1, status="events", new=2, handled=2, commit="abcdef1234567890"))
    clock["now"] += 15
    text = text_of(observer)
    assert "symbiote poll" in text
    assert "last poll" in text
    assert "(15s ago)" in text
    assert "next poll" in text
    assert "(in 45s)" in text
    assert "events app 1, ignore 1" in text
    assert "4987/5000" in text
    assert "storage commits 1 (last abcdef1234)" in text
    assert "recent actions" in text
    assert "comment octo/hello#7 done" in text
    assert "https://github.com/octo/hello/issues/7#issuecomment-1" in text
    assert "actions done 1" in text


def test_next_poll_obeys_poll_interval_and_rate_limit_waits() -> None:
    observer = LiveObserver(console(), interval=30, now=lambda: NOW, live=False)
    observer.cycle_finished(CycleReport(number=1, status="idle", poll_interval=120))
    assert "(in 2m00s)" in text_of(observer)
    observer.cycle_finished(CycleReport(number=2, status="rate-limited", wait_until=NOW + 600))
    text = text_of(observer)
    assert "(in 10m00s)" in text
    assert "rate-limited" in text
    assert "rate limit left -" in text  # no client attached yet
    observer.attach_client(client_with_rate())
    assert "4987/5000" in text_of(observer)


def test_private_repos_are_hidden_unless_revealed_and_markup_is_inert() -> None:
    secret = event("octo/secret-plans", public=False)
    hidden = LiveObserver(console(), reveal_private=False, now=lambda: NOW, live=False)
    act(hidden, secret, ActionStatus.DONE, url="https://github.com/octo/secret-plans/issues/7")
    text = text_of(hidden)
    assert "secret-plans" not in text
    assert "(private repo)" in text
    shown = LiveObserver(console(), reveal_private=True, now=lambda: NOW, live=False)
    act(shown, secret, ActionStatus.FAILED)
    shown.warn("[bold red]not markup[/] \x1b[31mescape")
    text = text_of(shown)
    assert "octo/secret-plans#7" in text
    assert "failed" in text
    assert "warning: [bold red]not markup[/] [31mescape" in text


def test_recent_actions_are_bounded() -> None:
    observer = LiveObserver(console(), now=lambda: NOW, live=False)
    for i in range(20):
        act(observer, event(event_id=str(40000000000 + i)), ActionStatus.ALREADY_DONE)
    assert len(observer.actions) == 8
    assert observer.action_counts["already_done"] == 20


def test_live_display_starts_and_stops_on_a_terminal() -> None:
    out = console(terminal=True)
    with LiveObserver(out, now=lambda: NOW, interval=60) as observer:
        observer.cycle_started(1)
        observer.cycle_finished(CycleReport(number=1, status="idle"))
        assert observer._live is not None
    assert observer._live is None
    assert "symbiote poll" in out.export_text()


def test_make_observer_picks_the_live_view_only_on_a_terminal() -> None:
    live = make_observer(False, True, client=client_with_rate(), console=console(terminal=True))
    assert isinstance(live, LiveObserver)
    assert live.client is not None
    close_observer(live)
    plain = make_observer(False, False, console=console(terminal=False))
    assert isinstance(plain, LineObserver)
    assert (plain.as_json, plain.reveal_private) == (False, False)
    as_json = make_observer(True, True, console=console(terminal=True))
    assert isinstance(as_json, LineObserver)
    assert as_json.as_json
    close_observer(as_json)  # no-op


def test_progress_bar_on_a_terminal() -> None:
    out = console(terminal=True)
    with progress("backfill", total=3, console=out) as bar:
        for _ in range(3):
            bar.advance()
    assert bar.completed == 3
    text = out.export_text()
    assert "backfill" in text
    assert "3/3" in text


def test_progress_is_silent_off_a_terminal_and_track_counts() -> None:
    out = console(terminal=False)
    assert list(track(["a", "b"], "gc", console=out)) == ["a", "b"]
    with ProgressBar("gc", None, console=out) as bar:
        bar.advance(5)
    assert bar.completed == 5
    assert out.export_text() == ""


def test_live_view_shows_notifications_by_reason_apart_from_event_routes() -> None:
    observer = LiveObserver(console(), now=lambda: NOW, live=False)
    assert "notifications" not in text_of(observer)  # nothing shown for a source that brought nothing
    ev = event()
    observer.decided(ev, decision(ev, Route.USER))
    items = [
        notification("review_requested", "1"),
        notification("mention", "2", repo="octo/secret-plans", private=True),
        notification("review_requested", "3"),
    ]
    for item in items:
        observer.decided(item, decision(item, Route.APP))
    text = text_of(observer)
    assert "events user 1 " in text  # notifications are not counted as events
    assert "notifications review_requested 2, mention 1" in text
    assert "Secret launch date" not in text
    assert "secret-plans" not in text
