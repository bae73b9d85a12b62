"""A small in-memory GitHub implementing ``GitHubAPI`` (``symbiote_cli.github.protocol``).

For unit tests of the executor and the flows: no HTTP, no PyGithub. ``fail_next`` queues
errors for a method name; ``lose_next_comment`` makes a comment land while its answer is lost
(a write with an unknown outcome). The HTTP fake (``tests/fakegithub.py``) stays for end-to-end tests.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from symbiote_cli.core.errors import GitHubError
from symbiote_cli.github.client import EventsPage, NotificationsPage, RateInfo
from symbiote_cli.github.protocol import GitHubAPI


@dataclass
class InMemoryGitHub:
    """Comments, reactions, labels and dispatches kept in dicts; every call is logged in ``calls``."""

    login: str = "octo"
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    """Threads as ``GET /notifications`` lists them (newest update first); ``mark_thread_read`` flips ``unread``."""
    notifications_last_modified: str | None = None
    notification_reads: list[tuple[str | None, int]] = field(default_factory=list)
    """(If-Modified-Since sent, status answered) of every ``list_notifications``."""
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: set[tuple[str, str]] = field(default_factory=set)
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    reactions: list[tuple[str, str, int | None, int | None]] = field(default_factory=list)
    labels: dict[tuple[str, int], list[str]] = field(default_factory=lambda: defaultdict(list))
    dispatches: list[tuple[str, str, str, dict[str, str]]] = field(default_factory=list)
    repository_dispatches: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    fail_next: dict[str, list[GitHubError | None]] = field(default_factory=lambda: defaultdict(list))
    lose_next_comment: int = 0
    _rate: RateInfo = field(default_factory=RateInfo)
    _next_id: int = 1

    @property
    def rate(self) -> RateInfo:
        return self._rate

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_next[name]:
            error = self.fail_next[name].pop(0)  # None: this call goes through, a later one fails
            if error is not None:
                raise error

    def whoami(self) -> str:
        self._call("whoami")
        return self.login

    def list_events(self, user: str, *, etag: str | None = None, page: int = 1, per_page: int = 100) -> EventsPage:
        self._call("list_events")
        mine = self.events.get(user, [])
        chunk = mine[(page - 1) * per_page : page * per_page]
        return EventsPage(200, chunk, None, None, has_next=len(mine) > page * per_page)

    def list_notifications(
        self, *, if_modified_since: str | None = None, page: int = 1, per_page: int = 50
    ) -> NotificationsPage:
        self._call("list_notifications")
        last = self.notifications_last_modified
        if if_modified_since is not None and last is not None and if_modified_since == last:
            self.notification_reads.append((if_modified_since, 304))
            return NotificationsPage(304, [], last, None, has_next=False)
        self.notification_reads.append((if_modified_since, 200))
        chunk = self.notifications[(page - 1) * per_page : page * per_page]
        return NotificationsPage(200, chunk, last, None, has_next=len(self.notifications) > page * per_page)

    def mark_thread_read(self, thread_id: str) -> None:
        self._call("mark_thread_read")
        for thread in self.notifications:
            if str(thread.get("id")) == thread_id:
                thread["unread"] = False
                return
        raise GitHubError(f"GitHub answered 404 to PATCH /notifications/threads/{thread_id}", 404)

    def get_issue_comment(self, full_name: str, comment_id: int) -> dict[str, Any] | None:
        self._call("get_issue_comment")
        for (repo, _number), comments in self.comments.items():
            if repo == full_name:
                for comment in comments:
                    if comment.get("id") == comment_id:
                        return comment
        return None

    def get_repo(self, full_name: str) -> dict[str, Any] | None:
        self._call("get_repo")
        return self.repos.get(full_name)

    def file_exists(self, full_name: str, path: str) -> bool:
        self._call("file_exists")
        return (full_name, path) in self.files

    def list_issue_comments(self, full_name: str, number: int, *, since: str | None = None) -> list[dict[str, Any]]:
        self._call("list_issue_comments")
        return list(self.comments[(full_name, number)])

    def create_comment(self, full_name: str, number: int, body: str) -> dict[str, Any]:
        self._call("create_comment")
        comment = {
            "id": self._next_id,
            "body": body,
            "html_url": f"https://github.com/{full_name}/issues/{number}#issuecomment-{self._next_id}",
        }
        self._next_id += 1
        self.comments[(full_name, number)].append(comment)
        if self.lose_next_comment:
            self.lose_next_comment -= 1
            raise GitHubError("connection reset after the write", None)
        return comment

    def delete_comment(self, full_name: str, comment_id: int) -> None:
        self._call("delete_comment")
        for (repo, _number), comments in self.comments.items():
            if repo == full_name:
                for comment in list(comments):
                    if comment.get("id") == comment_id:
                        comments.remove(comment)
                        return
        raise GitHubError(f"GitHub answered 404 to DELETE /repos/{full_name}/issues/comments/{comment_id}", 404)

    def add_reaction(
        self, full_name: str, content: str, *, issue_number: int | None = None, comment_id: int | None = None
    ) -> dict[str, Any]:
        self._call("add_reaction")
        self.reactions.append((full_name, content, issue_number, comment_id))
        return {"content": content}

    def add_labels(self, full_name: str, number: int, labels: list[str]) -> list[dict[str, Any]]:
        self._call("add_labels")
        have = self.labels[(full_name, number)]
        have.extend(label for label in labels if label not in have)
        return [{"name": label} for label in have]

    def dispatch_workflow(self, full_name: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        self._call("dispatch_workflow")
        self.dispatches.append((full_name, workflow, ref, inputs))

    def repository_dispatch(self, full_name: str, event_type: str, client_payload: dict[str, Any]) -> None:
        self._call("repository_dispatch")
        self.repository_dispatches.append((full_name, event_type, client_payload))


def as_api(fake: InMemoryGitHub) -> GitHubAPI:
    """The fake, checked by mypy against the Protocol."""
    return fake
