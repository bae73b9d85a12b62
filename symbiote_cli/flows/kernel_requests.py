"""What a verified UbiquityOS kernel request does.

The kernel forwards events that need the user's own authority (as workflow
inputs or an HTTP POST, both signed; see ``kernel.py``). After verification the
event it carries is planned by the same rules and acted on with the user's
token through the same executor, exactly once per state id (outbox on the
storage branch); the result goes back the kernel's way when enabled
(``repository_dispatch`` ``return-data-to-ubiquity-os-kernel``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import InputError
from symbiote_cli.core.models import ActionKind, ActionResult, ActionStatus, AuthMode, Event
from symbiote_cli.flows.inbox import Outcome, outbox_json, valid_state_id
from symbiote_cli.storage import layout as state

if TYPE_CHECKING:
    from symbiote_cli.core.kernel import KernelRequest
    from symbiote_cli.flows.act import ActOutcome
    from symbiote_cli.github.client import GitHubClient
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage

# webhook event name -> events API type (https://docs.github.com/rest/using-the-rest-api/github-event-types)
_TYPES = {
    "issues": "IssuesEvent",
    "issue_comment": "IssueCommentEvent",
    "pull_request": "PullRequestEvent",
    "pull_request_review_comment": "PullRequestReviewCommentEvent",
    "pull_request_review": "PullRequestReviewEvent",
    "push": "PushEvent",
}


def kernel_event(req: KernelRequest) -> Event:
    """The kernel's webhook payload as the events-API ``Event`` our rules understand."""
    name = req.event_name.split(".", 1)[0]
    event_type = _TYPES.get(name)
    if event_type is None:
        raise InputError(f"kernel event {req.event_name!r} is not one Symbiote handles")
    repository = req.payload.get("repository")
    sender = req.payload.get("sender")
    if not isinstance(repository, dict) or not isinstance(sender, dict):
        raise InputError("kernel payload lacks repository or sender")
    synthetic_id = str(int(hashlib.sha256(req.state_id.encode()).hexdigest()[:15], 16))
    payload = {k: v for k, v in req.payload.items() if k in ("action", "issue", "comment", "pull_request", "review")}
    try:
        return Event.model_validate(
            {
                "id": synthetic_id,
                "type": event_type,
                "actor": {"login": sender.get("login"), "id": sender.get("id")},
                "repo": {"name": repository.get("full_name"), "id": repository.get("id")},
                "payload": payload,
                "public": not bool(repository.get("private")),
                "created_at": None,
            }
        )
    except ValidationError as exc:
        raise InputError(f"kernel payload is not a usable event: {exc.error_count()} errors") from None


def act_on_kernel_inputs(
    settings: Settings,
    inputs: Mapping[str, Any],
    *,
    dry_run: bool = False,
    clock: Clock | None = None,
    storage: Storage | None = None,
    client: GitHubClient | None = None,
) -> ActOutcome:
    """Verify, then act once for the state id; record in the outbox; return to the kernel.

    ``storage``/``client`` let a long-running process (the worker) share its own.
    """
    from symbiote_cli.core.kernel import parse_and_verify
    from symbiote_cli.core.rulesfile import load_planner
    from symbiote_cli.flows.act import ActOutcome
    from symbiote_cli.wiring import make_client, make_executor, make_sealer, make_storage, resolve_user

    clock = clock or SystemClock()
    req = parse_and_verify(inputs, public_key_pem=settings.kernel_public_key, now=clock.now())
    from symbiote_cli.cli.output import REDACT

    REDACT.add(req.auth_token.get_secret_value())
    state_id = valid_state_id(req.state_id)
    event = kernel_event(req)
    client = client or make_client(settings)
    user = resolve_user(settings, client, None)
    storage = storage or make_storage(settings, clock)
    stored = storage.read_json(state.outbox_path(state_id))
    if isinstance(stored, dict) and isinstance(stored.get("result"), dict):
        previous = ActionResult.model_validate(stored["result"])
        detail = f"state {state_id} already handled"
        return ActOutcome(
            state_id, previous.model_copy(update={"status": ActionStatus.ALREADY_DONE, "detail": detail})
        )
    executor = make_executor(settings, client, clock, dry_run=dry_run)
    planned = load_planner(settings).plan(event, user)
    results = [
        executor.execute(
            r.model_copy(update={"auth": AuthMode.USER, "idempotency_key": f"kernel-{state_id}-{i}"}),
        )
        for i, r in enumerate(planned)
    ]
    result = _combine(results, event, clock)
    if dry_run:
        return ActOutcome(state_id, result)
    outcome = Outcome(state_id, result, None, private=event.private)
    record = outbox_json(user, outcome, make_sealer(settings), clock.now())
    storage.update(lambda _view: {state.outbox_path(state_id): record}, f"kernel: result of state {state_id[:40]}")
    if settings.kernel_return:
        return_to_kernel(settings, req, result)
    return ActOutcome(state_id, result)


def _combine(results: list[ActionResult], event: Event, clock: Clock) -> ActionResult:
    if not results:
        return ActionResult(
            idempotency_key="none", kind=ActionKind.NONE, repo=event.repo_name, status=ActionStatus.SKIPPED,
            detail="no rule acts on this event", at=clock.now(),
        )
    failed = [r for r in results if r.status is ActionStatus.FAILED]
    return failed[0] if failed else results[-1]


def kernel_output(result: ActionResult) -> dict[str, Any]:
    """What the kernel gets back: status and a link, nothing private."""
    return {"status": result.status.value, "kind": result.kind.value, "url": result.url, "detail": result.detail}


def return_to_kernel(settings: Settings, req: KernelRequest, result: ActionResult, repo: str | None = None) -> None:
    """``POST /repos/{plugin repo}/dispatches`` with the kernel's installation token, as the SDK does."""
    import os

    from symbiote_cli.core.kernel import return_dispatch_body
    from symbiote_cli.github.client import GitHubClient

    target = repo or os.environ.get("GITHUB_REPOSITORY") or settings.repo
    if not target:
        raise InputError("returning to the kernel needs GITHUB_REPOSITORY or SYMBIOTE_REPO (the plugin repo)")
    body = return_dispatch_body(req.state_id, kernel_output(result))
    client = GitHubClient(req.auth_token.get_secret_value(), settings.api_url, token_source="authToken")
    client.repository_dispatch(target, body["event_type"], body["client_payload"])
