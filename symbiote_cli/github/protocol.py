"""The GitHub calls Symbiote makes, as a typed ``Protocol``.

The flows and the executor type against ``GitHubAPI`` rather than the PyGithub-backed
``GitHubClient``, so that unit tests can hand them a small in-memory fake
(``tests/fakes.py``); the HTTP fake stays for end-to-end tests.
"""

from __future__ import annotations

from typing import Any, Protocol

from symbiote_cli.github.client import EventsPage, NotificationsPage, RateInfo


class GitHubAPI(Protocol):
    """What the poll loop, the executor and the flows call on GitHub."""

    @property
    def rate(self) -> RateInfo:
        """The last rate-limit headers seen."""
        ...

    def whoami(self) -> str:
        """The token owner's login."""
        ...

    def list_events(self, user: str, *, etag: str | None = None, page: int = 1, per_page: int = 100) -> EventsPage:
        """One page of the user's events, newest first."""
        ...

    def list_notifications(
        self, *, if_modified_since: str | None = None, page: int = 1, per_page: int = 50
    ) -> NotificationsPage:
        """One page of the user's notification threads, most recently updated first."""
        ...

    def mark_thread_read(self, thread_id: str) -> None:
        """Mark a notification thread as read."""
        ...

    def get_repo(self, full_name: str) -> dict[str, Any] | None:
        """Repository metadata, or None when it does not exist."""
        ...

    def get_issue_comment(self, full_name: str, comment_id: int) -> dict[str, Any] | None:
        """One issue or PR conversation comment, or None when it is gone."""
        ...

    def file_exists(self, full_name: str, path: str) -> bool:
        """Whether ``path`` exists in the repository's default branch."""
        ...

    def list_issue_comments(self, full_name: str, number: int, *, since: str | None = None) -> list[dict[str, Any]]:
        """All comments of an issue or pull request updated at or after ``since``."""
        ...

    def create_comment(self, full_name: str, number: int, body: str) -> dict[str, Any]:
        """Post a comment; the created comment."""
        ...

    def delete_comment(self, full_name: str, comment_id: int) -> None:
        """Delete an issue or PR conversation comment."""
        ...

    def add_reaction(
        self, full_name: str, content: str, *, issue_number: int | None = None, comment_id: int | None = None
    ) -> dict[str, Any]:
        """React to an issue or a comment (idempotent on GitHub's side)."""
        ...

    def add_labels(self, full_name: str, number: int, labels: list[str]) -> list[dict[str, Any]]:
        """Add labels to an issue or pull request."""
        ...

    def dispatch_workflow(self, full_name: str, workflow: str, ref: str, inputs: dict[str, str]) -> None:
        """``workflow_dispatch`` a workflow."""
        ...

    def repository_dispatch(self, full_name: str, event_type: str, client_payload: dict[str, Any]) -> None:
        """``repository_dispatch`` an event to a repository."""
        ...
