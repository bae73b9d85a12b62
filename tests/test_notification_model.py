"""Notifications as items (``core.models``): parsing GitHub's thread JSON, identity of an update, the cursor."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from symbiote_cli.core.clock import parse_iso
from symbiote_cli.core.errors import ConfigError
from symbiote_cli.core.models import (
    Event,
    Notification,
    NotificationCursor,
    Source,
    iso_z,
    item_order,
    parse_item,
)
from symbiote_cli.settings import Settings, load_settings
from symbiote_cli.storage import transactions


def thread(
    thread_id: str = "42",
    updated: str = "2026-12-01T10:00:00Z",
    *,
    reason: str = "review_requested",
    kind: str = "PullRequest",
    url: str | None = "https://api.github.com/repos/acme/app/pulls/7",
    private: bool = False,
) -> dict[str, Any]:
    """A thread as ``GET /notifications`` returns it (the OpenAPI ``thread`` schema's fields we read)."""
    return {
        "id": thread_id,
        "unread": True,
        "reason": reason,
        "updated_at": updated,
        "last_read_at": None,
        "subject": {"title": "Add the thing", "url": url, "latest_comment_url": url, "type": kind},
        "repository": {"full_name": "acme/app", "private": private, "html_url": "https://github.com/acme/app"},
        "url": f"https://api.github.com/notifications/threads/{thread_id}",
        "subscription_url": f"https://api.github.com/notifications/threads/{thread_id}/subscription",
    }


def test_a_thread_becomes_a_notification_item() -> None:
    item = parse_item(thread())
    assert isinstance(item, Notification)
    assert item.id == "n42-20261201T100000Z"
    assert (item.type, item.reason, item.action, item.subject_type) == (
        "Notification",
        "review_requested",
        "review_requested",
        "PullRequest",
    )
    assert (item.repo_name, item.owner, item.private, item.issue_number) == ("acme/app", "acme", False, 7)
    assert item.html_url == "https://github.com/acme/app/pull/7"
    assert item.title == "Add the thing"
    assert item.actor_login is None
    assert item.source is Source.NOTIFICATIONS
    assert Notification.model_validate(item.model_dump()) == item


def test_issue_numbers_only_for_issues_and_pull_requests() -> None:
    issue = parse_item(thread(kind="Issue", url="https://api.github.com/repos/acme/app/issues/3"))
    assert issue.issue_number == 3
    assert issue.html_url == "https://github.com/acme/app/issues/3"
    release = parse_item(thread(kind="Release", url="https://api.github.com/repos/acme/app/releases/99"))
    assert release.issue_number is None
    assert release.html_url is None
    discussion = parse_item(thread(kind="Discussion", url=None))
    assert discussion.issue_number is None


def test_events_still_parse_as_events() -> None:
    event = parse_item(
        {"id": "1", "type": "IssuesEvent", "actor": {"login": "octo"}, "repo": {"name": "acme/app"}, "payload": {}}
    )
    assert isinstance(event, Event)
    assert event.actor_login == "octo"


@pytest.mark.parametrize(
    "broken",
    [
        {"id": "x1"},
        {"updated_at": "yesterday"},
        {"reason": "Not A Reason"},
        {"repository": {"full_name": "no slash"}},
    ],
)
def test_malformed_threads_are_refused(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_item({**thread(), **broken})


def test_an_update_is_new_once_and_a_later_update_of_the_thread_again() -> None:
    cursor = NotificationCursor(user="octo", floor="2026-12-01T09:00:00Z")
    first = Notification.model_validate(thread(updated="2026-12-01T10:00:00Z"))
    assert cursor.is_new(first)
    cursor = cursor.handled([first])
    assert not cursor.is_new(first)
    again = Notification.model_validate(thread(updated="2026-12-01T10:05:00Z"))
    assert again.id != first.id
    assert cursor.is_new(again)
    old = Notification.model_validate(thread("7", "2026-12-01T08:00:00Z"))
    assert not cursor.is_new(old)  # before the baseline


def test_merging_keeps_every_handled_update_and_drops_last_modified_when_behind() -> None:
    mine = NotificationCursor(
        user="octo", last_modified="Tue, 01 Dec 2026 10:00:00 GMT", threads={"1": "2026-12-01T10:00:00Z"}
    )
    theirs = NotificationCursor(user="octo", threads={"1": "2026-12-01T09:00:00Z", "2": "2026-12-01T10:01:00Z"})
    merged = mine.merged(theirs)
    assert merged.threads == {"1": "2026-12-01T10:00:00Z", "2": "2026-12-01T10:01:00Z"}
    assert merged.last_modified is None  # the stored one knew of thread 2: read the list again
    same = mine.merged(NotificationCursor(user="octo", threads={"1": "2026-12-01T10:00:00Z"}))
    assert same.last_modified == mine.last_modified


def test_the_transaction_never_forgets_what_another_writer_handled() -> None:
    class View:
        def __init__(self, files: dict[str, Any]) -> None:
            self.files = files

        def read_json(self, path: str) -> Any:
            return self.files.get(path)

        def list_paths(self, prefix: str) -> list[str]:
            return [p for p in self.files if p.startswith(prefix)]

    stored = NotificationCursor(user="octo", threads={"2": "2026-12-01T10:01:00Z"})
    view = View({"users/octo/notifications.json": stored.model_dump(mode="json")})
    mine = NotificationCursor(user="octo", threads={"1": "2026-12-01T10:00:00Z"}, last_modified="x")
    now = parse_iso("2026-12-01T10:02:00Z")
    changes = transactions.advance_notifications(view, "octo", mine, now=now)
    written = NotificationCursor.model_validate(changes["users/octo/notifications.json"])
    assert written.threads == {"1": "2026-12-01T10:00:00Z", "2": "2026-12-01T10:01:00Z"}
    assert written.last_modified is None
    assert written.updated_at == now


def test_pruning_forgets_old_threads_under_a_raised_floor() -> None:
    now = parse_iso("2026-12-31T00:00:00Z")
    cursor = NotificationCursor(
        user="octo", floor="2026-11-01T00:00:00Z", threads={"1": "2026-11-20T00:00:00Z", "2": "2026-12-30T00:00:00Z"}
    )
    pruned = cursor.pruned(now)
    assert pruned.threads == {"2": "2026-12-30T00:00:00Z"}
    assert pruned.floor == iso_z(now - 30 * 86400)
    old = Notification.model_validate(thread("1", "2026-11-20T00:00:00Z"))
    assert not pruned.is_new(old)  # forgotten, yet still not new
    assert pruned.pruned(now) == pruned


@given(st.lists(st.tuples(st.sampled_from("123"), st.integers(0, 10_000)), max_size=30))
def test_handled_updates_are_never_new_again(updates: list[tuple[str, int]]) -> None:
    cursor = NotificationCursor(user="octo")
    items = [Notification.model_validate(thread(t, iso_z(1_790_000_000 + s))) for t, s in updates]
    cursor = cursor.handled(items)
    assert not any(cursor.is_new(item) for item in items)


def test_stored_ids_sort_events_by_number_and_notifications_apart() -> None:
    ids = ["10", "9", "n1-20261201T100000Z"]
    assert sorted(ids, key=item_order) == ["n1-20261201T100000Z", "9", "10"]


def test_sources_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBIOTE_SOURCES", " notifications, events ,events")
    assert Settings().sources == [Source.NOTIFICATIONS, Source.EVENTS]
    monkeypatch.setenv("SYMBIOTE_SOURCES", "")
    assert Settings().sources == [Source.EVENTS]  # an unset Actions variable arrives empty
    monkeypatch.setenv("SYMBIOTE_SOURCES", "events,notificatons")
    with pytest.raises(ConfigError, match="unknown source 'notificatons'"):
        load_settings()
    monkeypatch.delenv("SYMBIOTE_SOURCES")
    assert load_settings(sources="events,notifications").sources == [Source.EVENTS, Source.NOTIFICATIONS]
