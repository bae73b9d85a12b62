"""Routing is a pure function: every handler and its precedence."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbiote_cli.models import Event, RegistryEntry, Route
from symbiote_cli.privacy import repo_key
from symbiote_cli.routing import RoutingContext, handler_names, registry_key, route_event
from symbiote_cli.rules import DefaultRules, is_sensitive, summarize


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
