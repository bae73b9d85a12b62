"""Carrying out action requests, exactly once.

``symbiote act`` and the poll loop both call ``Executor.execute``. Given
:class:`Claims`, an executor first claims the request's idempotency key on the
storage branch (the compare-and-swap push lets one process win; in one process,
concurrent requests for a key wait for the first and share its outcome).
Comments are also made idempotent by a hidden HTML marker carrying the
idempotency key: before posting, and again after any write whose outcome is
unknown (timeout, 5xx, reset connection), the executor looks for the marker and
reports ``already_done`` instead of posting twice (the second line of defence,
for a crash between the post and the recorded outcome).

A request that carries a notification's ``thread_id`` (a rule's ``mark_read: true``) has the
thread marked read once its action is done (or found already done); failing to mark it read
never turns the done action into a failure.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.describe import describe
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError, SymbioteError
from symbiote_cli.core.models import MARKER_PREFIX, ActionKind, ActionRequest, ActionResult, ActionStatus, AuthMode
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.storage import layout, transactions

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.github.protocol import GitHubAPI
    from symbiote_cli.storage.branch import Storage

log = logging.getLogger("symbiote.execute")

# A write with an unknown outcome is re-checked and re-tried at most this often.
AMBIGUOUS_ATTEMPTS = 3
# Statuses that say "this will never work": record the failure, no retry storm.
PERMANENT = frozenset({400, 403, 404, 410, 422})


def _unknown_outcome(exc: GitHubError) -> bool:
    # No status (network), a 5xx, or a success status whose body we could not read.
    return exc.status is None or exc.status >= 500 or exc.status < 300


def stored_result(result: ActionResult, *, private: bool, names: bytes | None = None) -> dict[str, Any]:
    """``result`` as the branch keeps it (outbox, claims): a private repo's name (keyed with ``names``,
    ``Sealer.names``), detail and link redacted."""
    data = result.model_dump(mode="json")
    if private:
        data.update(repo=repo_key(result.repo, names), detail="(private)", url=None)
    return data


def claim_key(request: ActionRequest) -> str:
    """What a claim is on: the idempotency key where the action lands (as the marker is looked for on
    that issue), so that two users' requests that happen to share a key are not taken for one."""
    return f"{request.kind.value}:{request.repo.lower()}#{request.issue_number or ''}:{request.idempotency_key}"


class _Flight:
    """One key's action in progress in this process; the requests that came meanwhile wait on it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: ActionResult | None = None
        self.error: BaseException | None = None

    def outcome(self) -> ActionResult:
        self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class Claims:
    """Claims each action's idempotency key on the storage branch before it writes to GitHub.

    Concurrent requests for one action (the kernel retrying, two replicas, ``/state`` ids sharing
    an idempotency key) race between the marker check and the post; a claim
    (``transactions.claim_action``) pushed with compare-and-swap lets exactly one process act. In
    this process, requests for a key already in flight wait for it and get its outcome; a request
    losing to another process waits for that claim's stored outcome, or takes the claim over once
    older than ``lease`` (its holder died). Every caller is told the one outcome.
    """

    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        claimant: str,
        *,
        lease: float = transactions.CLAIM_LEASE,
        poll: float = 0.2,
        names: bytes | None = None,
    ) -> None:
        self.storage = storage
        self.names = names
        """The key private repos are named with on the branch (``Sealer.names``); None: the unkeyed hash."""
        self.clock = clock
        self.claimant = claimant
        self.lease = lease
        self.poll = poll
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def once(self, request: ActionRequest, act: Callable[[], ActionResult]) -> ActionResult:
        """``act()`` for ``request`` once across processes; the outcome of the one that acted."""
        key = claim_key(request)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            return flight.outcome()
        try:
            flight.result = self._claimed(request, act)
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            flight.done.set()
            with self._lock:
                self._flights.pop(key, None)

    def _claimed(self, request: ActionRequest, act: Callable[[], ActionResult]) -> ActionResult:
        key = claim_key(request)
        label = layout.claim_path(key).rsplit("/", 1)[-1][:12]
        while True:
            claim = partial(
                transactions.claim_action, key=key, claimant=self.claimant, now=self.clock.now(), lease=self.lease
            )
            applied = transactions.apply(self.storage, claim, f"claim action {label}")
            if applied.changes:
                break
            held = transactions.stored_claim(applied.view, key)
            if held is not None and held.result is not None:
                return self._stored(request, held.result)
            if held is not None and held.claimant == self.claimant:
                break
            # Another process holds a live claim: wait for its outcome, or for its lease to run out.
            time.sleep(self.poll)
            self.storage.refresh()
        try:
            result = act()
        except BaseException:
            release = partial(transactions.finish_action, key=key, claimant=self.claimant, result=None, now=0.0)
            with contextlib.suppress(SymbioteError):  # else it goes stale and is taken over
                self.storage.update(release, f"release action {label}")
            raise
        record = stored_result(result, private=request.private, names=self.names)
        finish = partial(
            transactions.finish_action, key=key, claimant=self.claimant, result=record, now=self.clock.now()
        )
        try:
            self.storage.update(finish, f"finish action {label}")
        except SymbioteError as exc:
            # The action happened: its caller is told so. The claim goes stale and a later request
            # for the key is kept single by the marker check.
            log.warning("action %s: its outcome could not be stored (%s)", label, exc.message)
        return result

    def _stored(self, request: ActionRequest, data: Any) -> ActionResult:
        try:
            return ActionResult.model_validate(data)
        except ValidationError:
            return ActionResult(
                idempotency_key=request.idempotency_key, kind=request.kind, repo=request.repo,
                status=ActionStatus.FAILED, detail="the stored outcome of this action is unreadable",
                at=self.clock.now(),
            )


class Executor:
    """Executes action requests with the right credentials (claimed first, given ``claims``)."""

    def __init__(
        self,
        user_client: GitHubAPI,
        clock: Clock,
        *,
        app_clients: Callable[[str], GitHubAPI | None] | None = None,
        dry_run: bool = False,
        claims: Claims | None = None,
    ) -> None:
        self.user_client = user_client
        self.app_clients = app_clients
        self.clock = clock
        self.dry_run = dry_run
        self.claims = claims

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
        if self.claims is not None:
            return self.claims.once(request, partial(self._act, request, since))
        return self._act(request, since)

    def _act(self, request: ActionRequest, since: str | None) -> ActionResult:
        result = self._write(request, since)
        if request.thread_id is not None and result.status in (ActionStatus.DONE, ActionStatus.ALREADY_DONE):
            return self._mark_read(request, request.thread_id, result)
        return result

    def _mark_read(self, request: ActionRequest, thread_id: str, result: ActionResult) -> ActionResult:
        """Mark the notification thread read after its action (``PATCH /notifications/threads/{id}``,
        https://docs.github.com/rest/activity/notifications#mark-a-thread-as-read).

        Always with the user's token: notifications are the user's own, an app cannot read or mark them.
        """
        try:
            self.user_client.mark_thread_read(thread_id)
        except (AuthError, RateLimitedError) as exc:
            # The loop stops or waits; the item is planned again and its action found done (the marker,
            # GitHub's idempotent reactions and labels), then the thread is marked read. A dispatch has
            # no such check: raising would dispatch it twice, so it is only reported.
            if request.kind is not ActionKind.DISPATCH:
                raise
            why = exc.message
        except GitHubError as exc:
            why = exc.message
        else:
            return result.model_copy(update={"detail": f"{result.detail}; thread marked read"})
        log.warning("notification thread %s: could not mark it read (%s)", thread_id, why)
        return result.model_copy(update={"detail": f"{result.detail}; could not mark the thread read ({why})"})

    def _write(self, request: ActionRequest, since: str | None) -> ActionResult:
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

    def _marked(self, request: ActionRequest, since: str | None) -> list[tuple[int, str]]:
        """(id, url) of every comment carrying this request's marker, oldest first.

        The key is matched whole (``key=K `` with the space the marker puts after it): ``ack-1``
        must not find ``ack-10``'s comment.
        """
        assert request.issue_number is not None
        needle = f"key={request.idempotency_key} "
        client = self._client(request)
        found: list[tuple[int, str]] = []
        for comment in client.list_issue_comments(request.repo, request.issue_number, since=since):
            body, cid, url = comment.get("body"), comment.get("id"), comment.get("html_url")
            if isinstance(body, str) and needle in body and MARKER_PREFIX in body:
                found.append((cid if isinstance(cid, int) else 0, url if isinstance(url, str) else ""))
        return sorted(found)

    def _find_marker(self, request: ActionRequest, since: str | None) -> str | None:
        marked = self._marked(request, since)
        return marked[0][1] if marked else None

    def _keep_first(self, request: ActionRequest, since: str | None, data: dict[str, Any]) -> ActionResult:
        """After a post: when another process posted the same comment meanwhile (two pollers of one user
        during a session handover check the marker at the same moment), the later comment deletes itself,
        so exactly one stays, whichever process looks last."""
        url = data.get("html_url")
        ours = data.get("id")
        done = self._result(request, ActionStatus.DONE, "comment posted", url=url if isinstance(url, str) else None)
        if not isinstance(ours, int):
            return done
        try:
            marked = self._marked(request, since)
        except (GitHubError, AuthError):
            # It was posted: that is what gets recorded (a rejected token or a rate limit stops the
            # next request). A duplicate, if any, is left rather than guessed at.
            return done
        first = marked[0] if marked else None
        if first is None or first[0] >= ours:
            return done
        assert request.issue_number is not None
        log.warning(
            "comment on %s#%s was also posted by another process: removing ours", request.repo, request.issue_number
        )
        try:
            self._client(request).delete_comment(request.repo, ours)
        except (GitHubError, AuthError):
            return done
        return self._result(request, ActionStatus.ALREADY_DONE, "comment already posted", url=first[1] or None)

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
            return self._keep_first(request, since, data)
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


__all__ = ["AMBIGUOUS_ATTEMPTS", "PERMANENT", "Claims", "Executor", "claim_key", "describe", "stored_result"]
