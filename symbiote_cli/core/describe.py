"""Human words for what an action request does, shared by dry runs, logs and ``rules explain``."""

from __future__ import annotations

from symbiote_cli.core.models import ActionKind, ActionRequest


def describe(request: ActionRequest) -> str:
    """Human words for what a request does (dry runs, logs)."""
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
