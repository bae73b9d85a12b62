"""Human words for what an action request does, shared by dry runs, logs and ``rules explain``."""

from __future__ import annotations

from symbiote_cli.core.models import ActionKind, ActionRequest


def _what(request: ActionRequest) -> str:
    where = f"{request.repo}#{request.issue_number}" if request.issue_number else request.repo
    if request.kind is ActionKind.COMMENT:
        return f"comment on {where}"
    if request.kind is ActionKind.REACTION:
        return f"react {request.reaction} on {where}"
    if request.kind is ActionKind.LABEL:
        return f"label {where} with {', '.join(request.labels)}"
    if request.kind is ActionKind.DISPATCH:
        return f"dispatch {request.workflow} in {request.repo}"
    return request.kind.value


def describe(request: ActionRequest) -> str:
    """Human words for what a request does (dry runs, logs), and the notification thread it marks
    read once done (a rule's ``mark_read``): a dry run must say all that a real run would do."""
    what = _what(request)
    if request.thread_id is not None:
        return f"{what}, then mark the notification thread read"
    return what
