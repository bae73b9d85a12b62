"""What a verified UbiquityOS kernel request does.

The kernel forwards events that need the user's own authority (as workflow
inputs or an HTTP POST, both signed; see ``kernel.py``). After verification the
event it carries is planned by the same rules and acted on with the user's
token through the same executor, exactly once per state id (outbox on the
storage branch); the result goes back the kernel's way when enabled
(``repository_dispatch`` ``return-data-to-ubiquity-os-kernel``). The wiring
verifies the request and builds the services this flow is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.errors import InputError
from symbiote_cli.core.kernel import return_dispatch_body
from symbiote_cli.core.models import ActionKind, ActionResult, ActionStatus, AuthMode, Event, valid_state_id
from symbiote_cli.flows.act import ActOutcome
from symbiote_cli.flows.inbox import Outcome, already_handled, outbox_json
from symbiote_cli.storage import transactions

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.core.kernel import KernelRequest
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.core.rules import RulesPlanner
    from symbiote_cli.flows.execute import Executor
    from symbiote_cli.github.protocol import GitHubAPI
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


def act_on_kernel_request(
    req: KernelRequest,
    *,
    user: str,
    storage: Storage,
    executor: Executor,
    planner: RulesPlanner,
    sealer: Sealer | None,
    clock: Clock,
    give_back: Callable[[ActionResult], None] | None = None,
) -> ActOutcome:
    """Act once for the verified request's state id; record in the outbox; ``give_back`` to the kernel."""
    state_id = valid_state_id(req.state_id)
    event = kernel_event(req)
    already = already_handled(storage, state_id)
    if already is not None:
        return ActOutcome(state_id, already)
    planned = planner.plan(event, user)
    results = [
        executor.execute(
            r.model_copy(update={"auth": AuthMode.USER, "idempotency_key": f"kernel-{state_id}-{i}"}),
        )
        for i, r in enumerate(planned)
    ]
    result = _combine(results, event, clock)
    if executor.dry_run:
        return ActOutcome(state_id, result)
    outcome = Outcome(state_id, result, None, private=event.private)
    record = outbox_json(user, outcome, sealer, clock.now())
    # Another run of this state id may have stored first: the first record is kept, as ``act`` does.
    record_once = partial(transactions.record_outcome, state_id=state_id, record=record)
    storage.update(record_once, f"kernel: result of state {state_id[:40]}")
    if give_back is not None:
        give_back(result)
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


def return_to_kernel(client: GitHubAPI, target: str, req: KernelRequest, result: ActionResult) -> None:
    """``POST /repos/{plugin repo}/dispatches`` with the kernel's installation token, as the SDK does.

    ``client`` carries the kernel's ``authToken``; ``target`` is the plugin repo.
    """
    body = return_dispatch_body(req.state_id, kernel_output(result))
    client.repository_dispatch(target, body["event_type"], body["client_payload"])
