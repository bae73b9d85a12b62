"""The fake GitHub serves notifications as GitHub does (``GET /notifications``, ``PATCH
/notifications/threads/{id}``), held to the OpenAPI description, over real HTTP and through
``GitHubClient`` (https://docs.github.com/rest/activity/notifications)."""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import Notification, parse_item
from symbiote_cli.github.client import GitHubClient

try:
    from . import openapi
    from .fakegithub import FakeGitHub, parse_iso
except ImportError:
    import openapi  # type: ignore[no-redef]
    from fakegithub import FakeGitHub, parse_iso  # type: ignore[no-redef]

TOKEN = "ghp_" + "n" * 36
ALICE = "ghp_" + "a" * 36


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(clock: FakeClock) -> Iterator[FakeGitHub]:
    """A fake on a FakeClock: octo (classic token TOKEN) with public octo/demo, alice (ALICE)."""
    with FakeGitHub(now=clock.now) as server:
        server.add_user("octo", TOKEN)
        server.add_user("alice", ALICE)
        server.add_repo("octo/demo")
        yield server
    assert not server.spec_violations, server.spec_violations


def client_for(fake: FakeGitHub, token: str = TOKEN) -> GitHubClient:
    return GitHubClient(token, fake.url, retries=0, seconds_between_requests=0, seconds_between_writes=0)


def get(fake: FakeGitHub, path: str, token: str | None = TOKEN, **params: Any) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(fake.url + path, headers=headers, params=params or None, timeout=10)


def test_listing_has_githubs_shape_newest_first(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_issue("octo/demo", 1, "Crash on start")
    issue = fake.notify("octo", "octo/demo", 1, reason="assign")
    clock.advance(60)
    pull = fake.notify("octo", "octo/demo", 2, reason="review_requested", subject_type="PullRequest", title="Fix")
    release = fake.notify("octo", "octo/demo", reason="subscribed", subject_type="Release", title="v1.0")

    answer = get(fake, "/notifications", all="true")
    assert answer.status_code == 200
    listed = answer.json()
    assert [t["id"] for t in listed] == [release["id"], pull["id"], issue["id"]]
    for thread in listed:
        openapi.assert_valid_schema("thread", thread)
        assert isinstance(thread["id"], str)
        assert thread["id"].isdigit()
        assert thread["url"] == f"{fake.url}/notifications/threads/{thread['id']}"
        assert thread["subscription_url"] == thread["url"] + "/subscription"
        assert thread["unread"] is True
        assert thread["last_read_at"] is None
        # minimal-repository: what a thread carries, and no more
        assert thread["repository"]["full_name"] == "octo/demo"
        assert thread["repository"]["private"] is False
        assert thread["repository"]["html_url"] == "https://github.com/octo/demo"
        assert "clone_url" not in thread["repository"]
        assert "permissions" not in thread["repository"]
    assert listed[2]["subject"] == {
        "title": "Crash on start",  # the issue's own title
        "url": f"{fake.url}/repos/octo/demo/issues/1",
        "latest_comment_url": f"{fake.url}/repos/octo/demo/issues/1",
        "type": "Issue",
    }
    assert listed[1]["subject"]["url"] == f"{fake.url}/repos/octo/demo/pulls/2"
    assert listed[0]["subject"]["url"].startswith(f"{fake.url}/repos/octo/demo/releases/")
    # Last-Modified is the newest update; the poll interval is GitHub's.
    newest = parse_iso(listed[0]["updated_at"])
    assert answer.headers["last-modified"] == email.utils.formatdate(newest, usegmt=True)
    assert answer.headers["x-poll-interval"] == "60"
    assert int(answer.headers["x-ratelimit-remaining"]) == 4999
    # The project's model reads them: number parsed from subject.url for issues and pulls only.
    items = [parse_item(t) for t in listed]
    assert all(isinstance(i, Notification) for i in items)
    assert [i.issue_number for i in items] == [None, 2, 1]
    assert [i.reason for i in items] == ["subscribed", "review_requested", "assign"]


def test_unread_only_by_default_and_patch_marks_read(fake: FakeGitHub, clock: FakeClock) -> None:
    first = fake.notify("octo", "octo/demo", 1, reason="mention")
    second = fake.notify("octo", "octo/demo", 2, reason="assign")
    clock.advance(30)
    client = client_for(fake)
    client.mark_thread_read(first["id"])
    [patch] = fake.requests_to("PATCH", r"^/notifications/threads/")
    assert (patch.status, patch.response, patch.path) == (205, None, f"/notifications/threads/{first['id']}")
    raw = requests.patch(
        f"{fake.url}/notifications/threads/{second['id']}", headers={"Authorization": f"token {TOKEN}"}, timeout=10
    )
    assert raw.status_code == 205
    assert raw.content == b""
    read = fake.thread(first["id"])
    assert read["unread"] is False
    assert read["last_read_at"] == fake.thread(second["id"])["last_read_at"]
    assert parse_iso(read["last_read_at"]) == clock.now()
    assert read["updated_at"] == first["updated_at"]  # reading is not an update
    assert get(fake, "/notifications").json() == []  # all=false: unread only
    assert [t["id"] for t in get(fake, "/notifications", all="true").json()] == [second["id"], first["id"]]
    fake.notify("octo", "octo/demo", 1, reason="comment")
    assert [t["id"] for t in get(fake, "/notifications").json()] == [first["id"]]  # unread again


def test_patch_answers_404_for_a_thread_not_the_users(fake: FakeGitHub) -> None:
    hers = fake.notify("alice", "octo/demo", 1, reason="mention")
    client = client_for(fake)
    for thread_id in (hers["id"], "999"):
        with pytest.raises(GitHubError) as info:
            client.mark_thread_read(thread_id)
        assert info.value.status == 404
    assert fake.thread(hers["id"])["unread"] is True
    assert [r.status for r in fake.requests_to("PATCH", r"^/notifications/threads/")] == [404, 404]


def test_pagination_with_per_page_and_the_cap_of_50(fake: FakeGitHub) -> None:
    made = [fake.notify("octo", "octo/demo", n, reason="subscribed")["id"] for n in range(1, 56)]
    newest_first = made[::-1]
    client = client_for(fake)
    seen: list[str] = []
    page = 1
    while True:
        got = client.list_notifications(page=page, per_page=20)
        seen += [t["id"] for t in got.notifications]
        if not got.has_next:
            break
        page += 1
    assert page == 3
    assert seen == newest_first
    answer = get(fake, "/notifications", all="true", per_page=20, page=2)
    assert 'rel="next"' in answer.headers["link"]
    assert 'rel="prev"' in answer.headers["link"]
    assert "page=3" in answer.headers["link"]
    assert "per_page=20" in answer.headers["link"]
    # default and maximum: 50 a page
    assert len(get(fake, "/notifications", all="true").json()) == 50
    assert len(get(fake, "/notifications", all="true", per_page=100).json()) == 50
    assert [t["id"] for t in client.list_notifications(page=2).notifications] == newest_first[50:]


def test_if_modified_since_304_costs_nothing_and_a_change_answers_200(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.notify("octo", "octo/demo", 1, reason="mention")
    client = client_for(fake)
    first = client.list_notifications()
    assert first.status == 200
    assert len(first.notifications) == 1
    assert first.last_modified is not None
    assert first.poll_interval == 60
    remaining, points = client.rate.remaining, fake.points_used
    for _ in range(3):
        clock.advance(60)
        idle = client.list_notifications(if_modified_since=first.last_modified)
        assert idle.status == 304
        assert idle.notifications == []
        assert idle.last_modified == first.last_modified
        assert idle.poll_interval == 60
    assert client.rate.remaining == remaining
    assert fake.points_used == points
    assert client.counters.not_modified == 3
    sent = fake.requests_to("GET", r"^/notifications$")[-1]
    assert sent.headers["if-modified-since"] == first.last_modified
    assert sent.query == {"all": "true", "per_page": "50", "page": "1"}
    # An update in the very second of Last-Modified still shows: updated_at moves on by >= 1 s.
    clock.advance(-180)
    fake.notify("octo", "octo/demo", 2, reason="review_requested", subject_type="PullRequest")
    changed = client.list_notifications(if_modified_since=first.last_modified)
    assert changed.status == 200
    assert [t["subject"]["url"].rsplit("/", 1)[1] for t in changed.notifications] == ["2", "1"]
    assert changed.last_modified is not None
    assert email.utils.parsedate_to_datetime(changed.last_modified) > email.utils.parsedate_to_datetime(
        first.last_modified
    )
    assert fake.points_used == points + 1
    # An empty inbox has a Last-Modified too, so an idle user's polls are free from the start.
    fake.add_user("bob", "ghp_" + "b" * 36)
    empty = client_for(fake, "ghp_" + "b" * 36)
    start = empty.list_notifications()
    assert (start.status, start.notifications) == (200, [])
    assert empty.list_notifications(if_modified_since=start.last_modified).status == 304


def test_poll_interval_comes_from_the_fake(clock: FakeClock) -> None:
    with FakeGitHub(now=clock.now, poll_interval=120) as server:
        server.add_user("octo", TOKEN)
        page = client_for(server).list_notifications()
        assert page.poll_interval == 120
        assert client_for(server).list_notifications(if_modified_since=page.last_modified).poll_interval == 120


def test_a_fine_grained_token_is_refused_with_403(fake: FakeGitHub) -> None:
    token = "github_pat_11" + secrets.token_hex(20)
    fake.add_user("octo", token)
    fake.notify("octo", "octo/demo", 1, reason="mention")
    client = client_for(fake, token)
    with pytest.raises(GitHubError) as info:
        client.list_notifications()
    assert type(info.value) is GitHubError
    assert not isinstance(info.value, RateLimitedError | AuthError)
    assert info.value.status == 403
    assert "Resource not accessible by personal access token" in str(info.value)
    assert token not in str(info.value)
    with pytest.raises(GitHubError) as patch:
        client.mark_thread_read(fake.notifications("octo")[0]["id"])
    assert patch.value.status == 403
    raw = get(fake, "/notifications", token)
    assert raw.status_code == 403
    assert raw.json()["documentation_url"].startswith("https://docs.github.com/rest/activity/notifications")
    assert raw.headers["x-ratelimit-remaining"] != "0"  # not a rate limit
    assert "x-oauth-scopes" not in raw.headers  # fine-grained tokens have no scopes
    # The same token still reads the events feed: the poll loop can degrade to events only.
    assert client.list_events("octo").status == 200
    assert fake.thread(fake.notifications("octo")[0]["id"])["unread"] is True


def test_a_classic_token_needs_the_notifications_or_repo_scope(fake: FakeGitHub) -> None:
    fake.add_user("octo", TOKEN, scopes="public_repo")
    refused = get(fake, "/notifications")
    assert refused.status_code == 403
    assert refused.json()["message"] == "Missing the 'notifications' scope."
    assert refused.headers["x-accepted-oauth-scopes"] == "notifications, repo"
    fake.add_user("octo", TOKEN, scopes="notifications, public_repo")
    assert get(fake, "/notifications").status_code == 200
    assert get(fake, "/notifications", None).status_code == 401


def test_a_second_update_keeps_the_thread_and_bumps_updated_at(fake: FakeGitHub, clock: FakeClock) -> None:
    first = fake.notify("octo", "octo/demo", 7, reason="mention", title="Flaky test")
    client_for(fake).mark_thread_read(first["id"])
    again = fake.notify("octo", "octo/demo", 7, reason="team_mention")
    assert again["id"] == first["id"]
    assert again["reason"] == "team_mention"
    assert again["unread"] is True
    assert again["subject"]["title"] == "Flaky test"
    assert parse_iso(again["updated_at"]) > parse_iso(first["updated_at"])
    assert len(fake.notifications("octo")) == 1
    # One thread, two updates: two items for the rules, the same update twice is one.
    items = {Notification.model_validate(t).id for t in (first, again, fake.thread(first["id"]))}
    assert len(items) == 2
    # Another subject, or another user, is another thread.
    assert fake.notify("octo", "octo/demo", 8, reason="mention")["id"] != first["id"]
    assert fake.notify("alice", "octo/demo", 7, reason="mention")["id"] != first["id"]
    # updated_at strictly increases per user, whatever the clock says.
    stamps = [parse_iso(t["updated_at"]) for t in fake.notifications("octo")]
    assert stamps == sorted(set(stamps), reverse=True)


def test_review_requested_and_mentioned(fake: FakeGitHub) -> None:
    review = fake.review_requested("octo", "octo/demo", 5, by="alice")
    assert review["reason"] == "review_requested"
    assert review["subject"]["type"] == "PullRequest"
    assert review["subject"]["url"].endswith("/repos/octo/demo/pulls/5")
    assert fake.issue("octo/demo", 5).pull is True
    assert fake.issue("octo/demo", 5).author == "alice"
    mention = fake.mentioned("octo", "octo/demo", 5, by="alice")
    assert mention["id"] == review["id"]  # the same pull request: the same thread
    assert mention["reason"] == "mention"
    [comment] = fake.comments_on("octo/demo", 5)
    assert "@octo" in comment.body
    assert mention["subject"]["latest_comment_url"] == f"{fake.url}/repos/octo/demo/issues/comments/{comment.id}"
    on_issue = fake.mentioned("octo", "octo/demo", 9, by="alice", body="@octo please")
    assert on_issue["subject"]["type"] == "Issue"
    assert fake.issue("octo/demo", 9).pull is False


def test_private_repositories_and_filters(fake: FakeGitHub, clock: FakeClock) -> None:
    fake.add_repo("octo/secret", private=True)
    secret = fake.notify("octo", "octo/secret", 1, reason="mention", title="Secret plan")
    clock.advance(3600)
    watched = fake.notify("octo", "octo/demo", 1, reason="subscribed")
    listed = get(fake, "/notifications").json()
    assert [t["id"] for t in listed] == [watched["id"], secret["id"]]
    assert listed[1]["repository"]["private"] is True
    assert Notification.model_validate(listed[1]).private is True
    assert [t["id"] for t in get(fake, "/notifications", participating="true").json()] == [secret["id"]]
    assert [t["id"] for t in get(fake, "/notifications", since=watched["updated_at"]).json()] == [watched["id"]]
    assert [t["id"] for t in get(fake, "/notifications", before=watched["updated_at"]).json()] == [secret["id"]]
    assert get(fake, "/notifications", since="yesterday").status_code == 422
    fake.spec_violations.clear()  # the bad "since" was rejected by the validator too, on purpose


def test_the_validator_checks_notification_responses(fake: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    thread = fake.notify("octo", "octo/demo", 1, reason="mention")
    real = fake.thread_json

    def broken(record: Any) -> dict[str, Any]:
        data = real(record)
        del data["subscription_url"]
        data["unread"] = "yes"
        return data

    monkeypatch.setattr(fake, "thread_json", broken)
    assert get(fake, "/notifications").status_code == 200
    problems = list(fake.spec_violations)
    assert any("subscription_url" in p for p in problems), problems
    assert any("'yes' is not of type 'boolean'" in p for p in problems), problems
    fake.spec_violations.clear()
    monkeypatch.setattr(fake, "thread_json", real)
    assert get(fake, f"/notifications/threads/{thread['id']}").json() == fake.thread(thread["id"])
    assert not fake.spec_violations
