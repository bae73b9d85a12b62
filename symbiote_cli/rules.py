"""What Symbiote does for an event: rules that turn an event into action requests.

The built-in rules reproduce the seed's behaviour: one acknowledgment comment
when the user opens an issue or a pull request, or comments on one. Planning is
pure; routing then decides whose credentials (if any) carry the actions out.
"""

from __future__ import annotations

from typing import Protocol

from symbiote_cli.models import ActionKind, ActionRequest, AuthMode, Event

# Kinds that act with the user's authority even on public repos.
SENSITIVE_KINDS = frozenset({ActionKind.DISPATCH})


class Planner(Protocol):
    """Anything that plans actions for an event (the default rules, a rules file)."""

    def plan(self, event: Event, user: str) -> list[ActionRequest]:
        """Actions for ``event`` in ``user``'s feed; [] when there is nothing to do."""


def _ack_target(event: Event) -> str | None:
    if event.type == "IssuesEvent" and event.action == "opened":
        return "issue"
    if event.type == "PullRequestEvent" and event.action == "opened":
        return "pull request"
    if event.type == "IssueCommentEvent" and event.action == "created":
        return "comment"
    if event.type == "PullRequestReviewCommentEvent" and event.action == "created":
        return "review comment"
    return None


class DefaultRules:
    """The seed's proof of concept: acknowledge issues, PRs and comments."""

    def plan(self, event: Event, user: str) -> list[ActionRequest]:
        target = _ack_target(event)
        number = event.issue_number
        if target is None or number is None or event.is_symbiote_marked:
            return []
        body = f"Symbiote noticed this {target} by @{event.actor.login} and is on it on behalf of @{user}."
        return [
            ActionRequest(
                kind=ActionKind.COMMENT,
                repo=event.repo_name,
                issue_number=number,
                body=body,
                idempotency_key=f"ack-{event.id}",
                event_id=event.id,
                private=event.private,
                auth=AuthMode.USER if event.private else AuthMode.APP,
                reason=f"acknowledge {target}",
            )
        ]


def is_sensitive(request: ActionRequest) -> bool:
    return request.kind in SENSITIVE_KINDS


def summarize(requests: list[ActionRequest]) -> str:
    """Short human words for a plan: 'comment', 'comment + label'."""
    return " + ".join(dict.fromkeys(r.kind.value for r in requests if r.kind is not ActionKind.NONE))
