"""Routing is a pure function: every handler and its precedence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbiote_cli.core.clock import FakeClock
from symbiote_cli.core.models import Event, RegistryEntry, Route
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.core.routing import RoutingContext, handler_names, registry_key, route_event
from symbiote_cli.core.rules import DefaultRules, is_sensitive, summarize
from symbiote_cli.github.registry import KernelRegistry
from symbiote_cli.storage import layout
from symbiote_cli.storage.transactions import merge_registry


def make_event(
    type_: str = "IssuesEvent",
    repo: str = "octo/hello",
    payload: dict[str, Any] | None = None,
    public: bool = True,
    event_id: str = "40000000001",
) -> Event:
    return Event.model_validate(
        {
            "id": event_id,
            "type": type_,
            "actor": {"login": "octo", "id": 1},
            "repo": {"name": repo, "id": 2},
            "payload": payload if payload is not None else {"action": "opened", "issue": {"number": 7, "body": "x"}},
            "public": public,
            "created_at": "2026-11-24T10:00:00Z",
        }
    )


def decide(event: Event, **ctx: Any) -> Any:
    planned = DefaultRules().plan(event, "octo")
    context = RoutingContext.build(
        "octo", planned={event.id: (summarize(planned), any(is_sensitive(r) for r in planned))}, **ctx
    )
    return route_event(event, context)


def test_handlers_registered_in_precedence_order() -> None:
    assert handler_names() == ["own-doing", "kernel", "nothing-to-do", "visibility"]


def test_public_issue_opened_goes_to_app() -> None:
    decision = decide(make_event())
    assert decision.route is Route.APP
    assert "public repo" in decision.reason


def test_private_issue_goes_to_user() -> None:
    decision = decide(make_event(public=False))
    assert decision.route is Route.USER
    assert "private" in decision.reason


def test_own_acknowledgment_is_ignored_even_in_kernel_repo() -> None:
    body = "hi\n<!-- symbiote:comment key=ack-1 -->"
    payload = {"action": "created", "issue": {"number": 7}, "comment": {"body": body}}
    event = make_event("IssueCommentEvent", payload=payload)
    decision = decide(event, kernel_repos=["octo/hello"])
    assert decision.route is Route.IGNORE
    assert "own comment" in decision.reason


@pytest.mark.parametrize(
    ("ctx", "word"),
    [
        ({"kernel_repos": ["OCTO/Hello"]}, "SYMBIOTE_KERNEL_REPOS"),
        ({"kernel_owners": ["octo"]}, "SYMBIOTE_KERNEL_OWNERS"),
        (
            {"registry": {"octo/hello": RegistryEntry(repo="octo/hello", kernel=True, source="x", checked_at=0)}},
            "kernel serves",
        ),
    ],
)
def test_kernel_sources(ctx: dict[str, Any], word: str) -> None:
    decision = decide(make_event(), **ctx)
    assert decision.route is Route.KERNEL
    assert word in decision.reason


def test_registry_negative_entry_does_not_route_to_kernel() -> None:
    registry = {"octo/hello": RegistryEntry(repo="octo/hello", kernel=False, source="none", checked_at=0)}
    assert decide(make_event(), registry=registry).route is Route.APP


def test_private_registry_entries_are_keyed_by_hash() -> None:
    key = registry_key("octo/secret", private=True)
    assert key == repo_key("octo/secret")
    assert "secret" not in key
    registry = {key: RegistryEntry(repo=key, kernel=True, source="x", checked_at=0)}
    assert decide(make_event(repo="octo/secret", public=False), registry=registry).route is Route.KERNEL


@pytest.mark.parametrize("type_", ["PushEvent", "WatchEvent", "CreateEvent", "ForkEvent"])
def test_record_only_types_are_ignored(type_: str) -> None:
    decision = decide(make_event(type_, payload={}))
    assert decision.route is Route.IGNORE
    assert "recorded only" in decision.reason


def test_unplanned_event_is_ignored_with_its_action_named() -> None:
    decision = decide(make_event("IssuesEvent", payload={"action": "closed", "issue": {"number": 3}}))
    assert decision.route is Route.IGNORE
    assert "IssuesEvent closed" in decision.reason


def test_sensitive_plan_goes_to_user_on_public_repo() -> None:
    event = make_event()
    ctx = RoutingContext.build("octo", planned={event.id: ("dispatch", True)})
    assert route_event(event, ctx).route is Route.USER


@given(
    type_=st.sampled_from(["IssuesEvent", "IssueCommentEvent", "PullRequestEvent", "PushEvent", "WatchEvent", "X"]),
    action=st.sampled_from(["opened", "created", "closed", "edited", None]),
    public=st.booleans(),
    body=st.text(max_size=50),
    kernel=st.booleans(),
)
def test_routing_is_total_and_consistent(
    type_: str, action: str | None, public: bool, body: str, kernel: bool
) -> None:
    payload: dict[str, Any] = {"issue": {"number": 1, "body": body}, "comment": {"body": body}}
    if action:
        payload["action"] = action
    event = make_event(type_, payload=payload, public=public)
    decision = decide(event, kernel_repos=["octo/hello"] if kernel else [])
    assert decision.event_id == event.id
    if "<!-- symbiote:" in body:
        assert decision.route is Route.IGNORE
    elif kernel:
        assert decision.route is Route.KERNEL
    elif decision.route in (Route.APP, Route.USER):
        assert (decision.route is Route.USER) == (not public)
        assert DefaultRules().plan(event, "octo")


# -- when the kernel's status is unknown (``symbiote route`` offline, or a failed lookup) -----------


def test_unknown_kernel_status_is_said_not_hidden_behind_the_fallback_route() -> None:
    unknown = {"octo/hello": "kernel status unknown offline"}
    public = decide(make_event(), kernel_unknown=unknown)
    assert public.route is Route.APP
    assert public.reason.startswith("kernel status unknown offline; if the kernel does not serve this repo: ")
    assert public.reason.endswith("public repo, safe action: comment")
    secret_key = registry_key("octo/secret", private=True)
    private = decide(
        make_event(repo="octo/secret", public=False), kernel_unknown={secret_key: "kernel status unknown x"}
    )
    assert private.route is Route.USER
    assert private.reason.startswith("kernel status unknown x;")
    # Only the repo it is about; a static list or a known entry still decides first.
    assert "unknown" not in decide(make_event(repo="octo/other"), kernel_unknown=unknown).reason
    assert decide(make_event(), kernel_unknown=unknown, kernel_owners=["octo"]).route is Route.KERNEL
    nothing = decide(make_event("PushEvent", payload={}), kernel_unknown=unknown)
    assert nothing.route is Route.IGNORE
    assert "unknown" not in nothing.reason


def _registry(entries: dict[str, RegistryEntry] | None = None, **kwargs: Any) -> Any:
    return KernelRegistry(None, FakeClock(start=10_000.0), entries=entries, ttl=100.0, **kwargs)


def test_a_registry_without_a_client_only_reads_its_cache() -> None:
    fresh = RegistryEntry(repo="octo/hello", kernel=True, source="x", checked_at=9_950.0)
    stale = RegistryEntry(repo="octo/old", kernel=True, source="x", checked_at=1.0)
    registry = _registry({"octo/hello": fresh, "octo/old": stale}, kernel_owners=["static"])
    events = [
        make_event(),
        make_event(repo="octo/old"),
        make_event(repo="octo/new"),
        make_event(repo="octo/secret", public=False),
        make_event(repo="static/repo"),
    ]
    registry.resolve(events)  # no client: nothing looked up, nothing changed
    assert registry.take_changes() == {}
    assert registry.known() == {"octo/hello": fresh}
    unknown = registry.unknown(events, "offline")
    assert set(unknown) == {"octo/old", "octo/new", repo_key("octo/secret")}
    assert unknown["octo/new"] == "kernel status unknown offline"
    assert unknown["octo/old"].startswith("kernel status unknown offline (the cached lookup of 1970-01-01T00:00:01Z")


def test_registry_changes_merge_keeping_the_newer_lookup() -> None:
    class View:
        def __init__(self, data: Any) -> None:
            self.data = data

        def read_json(self, path: str) -> Any:
            return self.data if path == layout.REGISTRY else None

        def list_paths(self, prefix: str) -> list[str]:
            return []

    newer = RegistryEntry(repo="octo/a", kernel=True, source="newer", checked_at=20.0)
    older = RegistryEntry(repo="octo/a", kernel=False, source="older", checked_at=10.0)
    other = RegistryEntry(repo="octo/b", kernel=False, source="b", checked_at=5.0)
    view = View(layout.registry_json({"octo/a": newer}))
    repos = merge_registry(view, {"octo/a": older, "octo/b": other})[layout.REGISTRY]["repos"]
    assert repos["octo/a"]["source"] == "newer"
    assert repos["octo/b"]["source"] == "b"
