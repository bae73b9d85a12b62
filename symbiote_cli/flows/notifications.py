"""The notifications source: what others ask of the user (``GET /notifications``).

The events feed shows what the user did; notifications show review requests, mentions,
assignments and the rest addressed to them
(https://docs.github.com/rest/activity/notifications). Reading them costs nothing while nothing
changed: the last ``Last-Modified`` goes back as ``If-Modified-Since`` and GitHub answers 304,
which does not count against the rate limit.

This module reads and selects; the poll loop (``poll.Poller``) routes, acts, records and commits,
with the one write budget and the one commit per cycle it shares with the events feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import ValidationError

from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import MARKER_PREFIX, Notification, NotificationCursor

if TYPE_CHECKING:
    from collections.abc import Callable

    from symbiote_cli.github.protocol import GitHubAPI

PER_PAGE = 50
"""GitHub's maximum page size for ``GET /notifications``."""


@dataclass
class Read:
    """One read of the notifications list."""

    status: int
    new: list[Notification] = field(default_factory=list)
    """Updates not handled yet, oldest first (one per thread: the list shows each thread's latest)."""
    last_modified: str | None = None
    poll_interval: int | None = None
    fetched: int = 0
    gap: bool = False
    """Every update read was new and the page cap stopped the reading: older ones may be unread."""
    newest: str | None = None
    """The newest ``updated_at`` read (a first run's baseline)."""


def read(
    client: GitHubAPI,
    cursor: NotificationCursor | None,
    *,
    backlog: bool,
    backfill: bool,
    max_pages: int,
    warn: Callable[[str], None],
) -> Read:
    """Read the list and pick the updates ``cursor`` has not handled.

    ``If-Modified-Since`` is sent only when nothing is left from the last read (``backlog`` false):
    a 304 would otherwise hide the updates still to handle. Later pages are read only while a page
    is all new (older pages hold what was handled before), and on a first run only with
    ``backfill`` (without it the first read is the baseline).
    """
    since = cursor.last_modified if cursor is not None and not backlog else None
    first = client.list_notifications(if_modified_since=since, per_page=PER_PAGE)
    result = Read(status=first.status, last_modified=first.last_modified, poll_interval=first.poll_interval)
    if first.status == 304:
        result.last_modified = since
        return result
    page = first
    pages = 1
    seen: dict[str, Notification] = {}
    while True:
        parsed = _parse(page.notifications, warn)
        for item in parsed:
            seen.setdefault(item.id, item)
        all_new = cursor is not None and all(cursor.is_new(item) for item in parsed)
        more = page.has_next and (all_new or (cursor is None and backfill))
        if not more:
            break
        if pages >= max_pages:
            result.gap = cursor is not None
            break
        pages += 1
        page = client.list_notifications(page=pages, per_page=PER_PAGE)
    items = sorted(seen.values(), key=lambda n: (n.updated_at, n.thread_id))
    result.fetched = len(items)
    result.newest = items[-1].updated_at if items else None
    result.new = [item for item in items if cursor is None or cursor.is_new(item)]
    return result


def baseline(user: str, read_result: Read, *, now: float, backfill: bool) -> NotificationCursor:
    """The first cursor: without ``backfill``, every update read so far counts as handled (the
    ``floor`` is the newest one), as the events feed's baseline. An empty list needs no floor: every
    later update is new (our clock, which may differ from GitHub's, never decides)."""
    if backfill:
        return NotificationCursor(user=user.lower(), baseline_at=now)
    return NotificationCursor(
        user=user.lower(),
        floor=read_result.newest,
        last_modified=read_result.last_modified,
        baseline_at=now,
    )


def screen_own(client: GitHubAPI, item: Notification) -> Notification:
    """``item`` marked ``own_comment`` when its thread's latest comment is Symbiote's (carries the hidden
    marker).

    A comment the app posts on a thread of the user's notifies them (the user's own comments do not:
    https://docs.github.com/account-and-profile/managing-subscriptions-and-notifications-on-github/setting-up-notifications/about-notifications);
    answering that update would answer ourselves, again and again. One read, asked only for an update
    a rule would act on. A comment that cannot be read is taken as someone else's.
    """
    where = item.latest_comment
    if where is None:
        return item
    try:
        comment = client.get_issue_comment(*where)
    except (AuthError, RateLimitedError):
        raise
    except GitHubError:
        return item
    body = comment.get("body") if comment else None
    if isinstance(body, str) and MARKER_PREFIX in body:
        return item.model_copy(update={"own_comment": True})
    return item


def _parse(raw: list[dict[str, object]], warn: Callable[[str], None]) -> list[Notification]:
    items: list[Notification] = []
    for thread in raw:
        try:
            items.append(Notification.model_validate(thread))
        except ValidationError:
            warn("skipped a malformed notification from GitHub")
    return items
