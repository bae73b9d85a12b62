"""Carrying out action requests, exactly once.

``symbiote act`` and the poll loop both call ``Executor.execute``. Comments are
made idempotent by a hidden HTML marker carrying the request's idempotency key:
before posting, and again after any write whose outcome is unknown (timeout,
5xx, reset connection), the executor looks for the marker and reports
``already_done`` instead of posting twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from symbiote_cli.core.describe import describe
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError
from symbiote_cli.core.models import ActionKind, ActionRequest, ActionResult, ActionStatus, AuthMode

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.github.protocol import GitHubAPI

log = logging.getLogger("symbiote.execute")

# A write with an unknown outcome is re-checked and re-tried at most this often.
AMBIGUOUS_ATTEMPTS = 3
# Statuses that say "this will never work": record the failure, no retry storm.
PERMANENT = frozenset({400, 403, 404, 410, 422})


def _unknown_outcome(exc: GitHubError) -> bool:
    # No status (network), a 5xx, or a success status whose body we could not read.
    return exc.status is None or exc.status >= 500 or exc.status < 300


class Executor:
    """Executes action requests with the right credentials."""

    def __init__(
        self,
        user_client: GitHubAPI,
        clock: Clock,
        *,
        app_clients: Callable[[str], GitHubAPI | None] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.user_client = user_client
        self.app_clients = app_clients
        self.clock = clock
        self.dry_run = dry_run

    def _client(self, request: ActionRequest) -> GitHubAPI:
        # App credentials only for public repos and safe actions; else the user's token.
        if request.auth is AuthMode.APP and self.app_clients is not None and not request.private:
            client = self.app_clients(request.repo)
            if client is not None:
                return client
        return self.user_client

    def _result(self, request: ActionRequest, status: ActionStatus, detail: str, **extra: object) -> ActionResult:
        return ActionResult(
            idempotency_key=request.idempotency_key,
            kind=request.kind,
            repo=request.repo,
            status=status,
            detail=detail,
            at=self.clock.now(),
            **extra,
        )

    def execute(self, request: ActionRequest, *, since: str | None = None) -> ActionResult:
        """Do ``request`` once. Raises only AuthError and RateLimitedError (the loop handles those)."""
        try:
            request.check_complete()
        except ValueError as exc:
            return self._result(request, ActionStatus.FAILED, str(exc))
        if request.kind in (ActionKind.NONE, ActionKind.KERNEL):
            what = "left to the UbiquityOS kernel" if request.kind is ActionKind.KERNEL else "nothing to do"
            return self._result(request, ActionStatus.SKIPPED, what)
        if self.dry_run:
            return self._result(request, ActionStatus.PLANNED, f"would {describe(request)}")
        try:
            if request.kind is ActionKind.COMMENT:
                return self._comment(request, since)
            if request.kind is ActionKind.REACTION:
                return self._reaction(request)
            if request.kind is ActionKind.LABEL:
                return self._label(request)
            return self._dispatch(request)
        except (AuthError, RateLimitedError):
            raise
        except GitHubError as exc:
            return self._result(request, ActionStatus.FAILED, exc.message, status_code=exc.status)

    def _find_marker(self, request: ActionRequest, since: str | None) -> str | None:
        assert request.issue_number is not None
        needle = f"key={request.idempotency_key}"
        client = self._client(request)
        for comment in client.list_issue_comments(request.repo, request.issue_number, since=since):
            body = comment.get("body")
            if isinstance(body, str) and needle in body and "<!-- symbiote:" in body:
                url = comment.get("html_url")
                return url if isinstance(url, str) else ""
        return None

    def _comment(self, request: ActionRequest, since: str | None) -> ActionResult:
        assert request.issue_number is not None
        assert request.body is not None
        existing = self._find_marker(request, since)
        if existing is not None:
            return self._result(request, ActionStatus.ALREADY_DONE, "comment already posted", url=existing or None)
        body = f"{request.body}\n\n{request.marker}"
        client = self._client(request)
        last: GitHubError | None = None
        for _attempt in range(AMBIGUOUS_ATTEMPTS):
            try:
                data = client.create_comment(request.repo, request.issue_number, body)
            except GitHubError as exc:
                if isinstance(exc, (AuthError, RateLimitedError)) or not _unknown_outcome(exc):
                    raise
                last = exc
                log.warning("comment on %s#%s: %s; checking whether it landed", request.repo, request.issue_number, exc)
                found = self._find_marker(request, since)
                if found is not None:
                    return self._result(request, ActionStatus.DONE, "comment posted", url=found or None)
                continue
            url = data.get("html_url")
            return self._result(request, ActionStatus.DONE, "comment posted", url=url if isinstance(url, str) else None)
        assert last is not None
        return self._result(request, ActionStatus.FAILED, last.message, status_code=last.status)

    def _reaction(self, request: ActionRequest) -> ActionResult:
        # Reactions are idempotent on GitHub's side: 200 for an existing one, 201 when new.
        assert request.reaction is not None
        self._client(request).add_reaction(
            request.repo, request.reaction, issue_number=request.issue_number, comment_id=request.comment_id
        )
        return self._result(request, ActionStatus.DONE, f"reacted {request.reaction}")

    def _label(self, request: ActionRequest) -> ActionResult:
        assert request.issue_number is not None
        self._client(request).add_labels(request.repo, request.issue_number, request.labels)
        return self._result(request, ActionStatus.DONE, f"labelled {', '.join(request.labels)}")

    def _dispatch(self, request: ActionRequest) -> ActionResult:
        # workflow_dispatch is not idempotent and has no marker: a failure with an
        # unknown outcome is recorded as failed, never retried (at most once).
        assert request.workflow is not None
        self.user_client.dispatch_workflow(request.repo, request.workflow, request.ref or "main", request.inputs)
        return self._result(request, ActionStatus.DONE, f"dispatched {request.workflow}")


__all__ = ["AMBIGUOUS_ATTEMPTS", "PERMANENT", "Executor", "describe"]
