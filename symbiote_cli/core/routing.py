"""Routing: who handles an event. A pure function of the event, the kernel
registry and settings — no I/O, so it is exhaustively testable.

Routing is a chain of small registered handlers (as in python/bedevere): each
looks at the event and either decides or passes. The first decision wins; the
order of registration is the order of precedence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from symbiote_cli.core.models import Item, RegistryEntry, Route, RouteDecision
from symbiote_cli.core.privacy import repo_key

Handler = Callable[[Item, "RoutingContext"], RouteDecision | None]
_HANDLERS: list[tuple[str, Handler]] = []

# Event types whose only outcome is a record: they are the user's own activity
# with nothing to answer (https://docs.github.com/rest/using-the-rest-api/github-event-types).
RECORD_ONLY_TYPES = frozenset(
    {
        "PushEvent",
        "CreateEvent",
        "DeleteEvent",
        "ForkEvent",
        "WatchEvent",
        "PublicEvent",
        "MemberEvent",
        "GollumEvent",
        "ReleaseEvent",
        "SponsorshipEvent",
        "CommitCommentEvent",
        "DiscussionEvent",
    }
)


@dataclass(frozen=True)
class RoutingContext:
    """Everything routing may consult, gathered beforehand by the caller."""

    user: str
    kernel_repos: frozenset[str] = frozenset()
    kernel_owners: frozenset[str] = frozenset()
    registry: Mapping[str, RegistryEntry] = field(default_factory=dict)
    planned: Mapping[str, tuple[str, bool]] = field(default_factory=dict)
    """event id -> (summary of planned actions, whether any is sensitive); empty summary = nothing to do."""
    kernel_unknown: Mapping[str, str] = field(default_factory=dict)
    """registry key -> why the kernel's status is unknown (a lookup that could not be made or failed)."""
    names: bytes | None = None
    """The key private repos are named with (``Sealer.names``), or None for the unkeyed hash."""

    @classmethod
    def build(
        cls,
        user: str,
        *,
        kernel_repos: Iterable[str] = (),
        kernel_owners: Iterable[str] = (),
        registry: Mapping[str, RegistryEntry] | None = None,
        planned: Mapping[str, tuple[str, bool]] | None = None,
        kernel_unknown: Mapping[str, str] | None = None,
        names: bytes | None = None,
    ) -> RoutingContext:
        return cls(
            user=user,
            kernel_repos=frozenset(r.lower() for r in kernel_repos),
            kernel_owners=frozenset(o.lower() for o in kernel_owners),
            registry=registry or {},
            planned=planned or {},
            kernel_unknown=kernel_unknown or {},
            names=names,
        )


def registry_key(repo: str, *, private: bool, names: bytes | None = None) -> str:
    """Registry entries of private repos are keyed by a hash (keyed with ``names``): the branch is public."""
    return repo_key(repo, names) if private else repo.lower()


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register a routing handler; order of registration is precedence."""

    def register(func: Handler) -> Handler:
        _HANDLERS.append((name, func))
        return func

    return register


def _decide(event: Item, route: Route, reason: str) -> RouteDecision:
    return RouteDecision(event_id=event.id, type=event.type, repo=event.repo_name, route=route, reason=reason)


@handler("own-doing")
def _own_doing(event: Item, _ctx: RoutingContext) -> RouteDecision | None:
    # Our acknowledgments appear in the user's feed as IssueCommentEvents by the
    # same user; answering them would loop forever. They carry the hidden marker.
    if event.is_symbiote_marked:
        return _decide(event, Route.IGNORE, "Symbiote's own comment (hidden marker): never acted on")
    return None


@handler("kernel")
def _kernel(event: Item, ctx: RoutingContext) -> RouteDecision | None:
    repo = event.repo_name.lower()
    if repo in ctx.kernel_repos:
        return _decide(event, Route.KERNEL, "repo is in SYMBIOTE_KERNEL_REPOS: left to the UbiquityOS kernel")
    if event.owner.lower() in ctx.kernel_owners:
        return _decide(event, Route.KERNEL, "owner is in SYMBIOTE_KERNEL_OWNERS: left to the UbiquityOS kernel")
    entry = ctx.registry.get(registry_key(event.repo_name, private=event.private, names=ctx.names))
    if entry is not None and entry.kernel:
        return _decide(event, Route.KERNEL, f"UbiquityOS kernel serves this repo ({entry.source}): left to it")
    return None


@handler("nothing-to-do")
def _nothing_to_do(event: Item, ctx: RoutingContext) -> RouteDecision | None:
    planned = ctx.planned.get(event.id)
    if planned is not None and planned[0]:
        return None
    if event.type in RECORD_ONLY_TYPES:
        return _decide(event, Route.IGNORE, f"{event.type}: recorded only, nothing to do")
    if planned is None:
        return None
    action = f" {event.action}" if event.action else ""
    return _decide(event, Route.IGNORE, f"{event.type}{action}: no rule acts on it, recorded only")


@handler("visibility")
def _visibility(event: Item, ctx: RoutingContext) -> RouteDecision:
    summary, sensitive = ctx.planned.get(event.id, ("", False))
    what = summary or "act"
    if event.private:
        route, reason = Route.USER, f"private repo: {what} with the user's token"
    elif sensitive:
        route, reason = Route.USER, f"sensitive action: {what} with the user's token"
    else:
        route, reason = Route.APP, f"public repo, safe action: {what}"
    # Reached only because no kernel rule decided: when that is for want of a lookup, say so
    # rather than present the answer as if the kernel had been ruled out.
    unknown = ctx.kernel_unknown.get(registry_key(event.repo_name, private=event.private, names=ctx.names))
    if unknown:
        reason = f"{unknown}; if the kernel does not serve this repo: {reason}"
    return _decide(event, route, reason)


def route_event(event: Item, ctx: RoutingContext) -> RouteDecision:
    """Decide who handles ``event``: kernel, app, user or ignore (with a reason)."""
    for _name, func in _HANDLERS:
        decision = func(event, ctx)
        if decision is not None:
            return decision
    raise AssertionError("the visibility handler always decides")  # pragma: no cover


def handler_names() -> list[str]:
    return [name for name, _ in _HANDLERS]
