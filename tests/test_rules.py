"""Rules: the schema and its line-numbered errors, matching, templates, keys, built-ins, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from symbiote_cli.core import rulesfile
from symbiote_cli.core.errors import ConfigError, InputError
from symbiote_cli.core.models import MARKER_PREFIX, ActionKind, ActionRequest, AuthMode, Event, Notification, Route
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import (
    BUILTIN_RULES,
    KINDS,
    MAX_INPUT,
    MAX_PATTERN,
    NOTIFICATION_REASONS,
    SENSITIVE_KINDS,
    SUBJECT_TYPES,
    TEXT_LIMIT,
    DefaultRules,
    RuleSet,
    RulesPlanner,
    builtin_planner,
    check_template,
    compile_pattern,
    is_sensitive,
    summarize,
)
from symbiote_cli.core.rulesfile import RulesFileError, parse_rules
from symbiote_cli.settings import Settings
from symbiote_cli.wiring import explain_events, fork_repo, load_planner, rules_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GITHUB_", "GH_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_event(
    type_: str = "IssuesEvent",
    payload: dict[str, Any] | None = None,
    *,
    repo: str = "octo/hello",
    actor: str = "octo",
    public: bool = True,
    event_id: str = "40000000001",
) -> Event:
    return Event.model_validate(
        {
            "id": event_id,
            "type": type_,
            "actor": {"login": actor, "id": 1},
            "repo": {"name": repo, "id": 2},
            "payload": payload if payload is not None else {"action": "opened", "issue": {"number": 7, "body": "x"}},
            "public": public,
            "created_at": "2026-11-24T10:00:00Z",
        }
    )


def comment_event(body: str, *, actor: str = "octo", number: int = 7, **kw: Any) -> Event:
    payload = {
        "action": "created",
        "issue": {"number": number, "title": "Ship it", "html_url": f"https://github.com/octo/hello/issues/{number}"},
        "comment": {"id": 99, "body": body, "html_url": "https://github.com/octo/hello/issues/7#issuecomment-99"},
    }
    return make_event("IssueCommentEvent", payload, actor=actor, **kw)


def planner_for(text: str, fork: str | None = "octo/symbiote") -> RulesPlanner:
    return RulesPlanner(parse_rules(text, "rules.yml"), fork=fork, source="rules.yml")


def problems_of(text: str) -> list[str]:
    with pytest.raises(RulesFileError) as info:
        parse_rules(text, "rules.yml")
    return [str(p) for p in info.value.problems]


# -- built-in rules reproduce DefaultRules -------------------------------------------------------


CASES = [
    ("IssuesEvent", {"action": "opened", "issue": {"number": 7}}),
    ("IssuesEvent", {"action": "closed", "issue": {"number": 7}}),
    ("PullRequestEvent", {"action": "opened", "number": 3, "pull_request": {"number": 3}}),
    ("PullRequestEvent", {"action": "synchronize", "number": 3, "pull_request": {"number": 3}}),
    ("IssueCommentEvent", {"action": "created", "issue": {"number": 7}, "comment": {"id": 5, "body": "hi"}}),
    ("IssueCommentEvent", {"action": "edited", "issue": {"number": 7}, "comment": {"id": 5, "body": "hi"}}),
    (
        "IssueCommentEvent",
        {"action": "created", "issue": {"number": 7}, "comment": {"body": f"ok\n{MARKER_PREFIX}comment key=k -->"}},
    ),
    ("PullRequestReviewCommentEvent", {"action": "created", "pull_request": {"number": 3}, "comment": {"id": 8}}),
    ("PullRequestReviewEvent", {"action": "created", "pull_request": {"number": 3}}),
    ("PushEvent", {"ref": "refs/heads/main"}),
    ("IssuesEvent", {"action": "opened"}),
]


@pytest.mark.parametrize(("type_", "payload"), CASES)
@pytest.mark.parametrize("public", [True, False])
def test_builtin_rules_reproduce_default_rules(type_: str, payload: dict[str, Any], public: bool) -> None:
    event = make_event(type_, payload, public=public)
    assert builtin_planner().plan(event, "octo") == DefaultRules().plan(event, "octo")


LOGINS = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,10}", fullmatch=True)


@given(
    type_=st.sampled_from(
        ["IssuesEvent", "PullRequestEvent", "IssueCommentEvent", "PullRequestReviewCommentEvent", "PushEvent", "X"]
    ),
    action=st.sampled_from(["opened", "created", "closed", "edited", "synchronize", None]),
    number=st.one_of(st.none(), st.integers(min_value=-2, max_value=10**6)),
    body=st.text(max_size=40),
    public=st.booleans(),
    actor=LOGINS,
    user=LOGINS,
)
def test_builtin_rules_equal_default_rules_on_any_event(
    type_: str, action: str | None, number: int | None, body: str, public: bool, actor: str, user: str
) -> None:
    payload: dict[str, Any] = {"issue": {"number": number, "body": body}, "comment": {"id": 3, "body": body}}
    if action is not None:
        payload["action"] = action
    event = make_event(type_, payload, public=public, actor=actor)
    assert builtin_planner().plan(event, user) == DefaultRules().plan(event, user)


def test_builtin_rules_are_a_valid_ruleset() -> None:
    assert [r.name for r in BUILTIN_RULES.rules] == [
        "ack-issue",
        "ack-pull-request",
        "ack-comment",
        "ack-review-comment",
    ]
    assert RuleSet.model_validate(BUILTIN_RULES.model_dump(by_alias=True)) == BUILTIN_RULES


# -- kinds and sensitivity -------------------------------------------------------------------------


def test_every_kind_is_declared_and_sensitivity_comes_from_sensitive_kinds() -> None:
    assert set(KINDS) == set(ActionKind)
    assert {k for k, spec in KINDS.items() if spec.sensitive} == SENSITIVE_KINDS == {ActionKind.DISPATCH}


DEPLOY = r"""
version: 1
rules:
  - name: deploy
    event: IssueCommentEvent
    action: created
    actor: self
    text: '^/symbiote deploy(?:[ \t]+(?P<env>[a-z]+))?[ \t]*$'
    do:
      kind: dispatch
      workflow: deploy.yml
      inputs:
        env: "{{ match.env }}"
        title: "{{ title }}"
        number: "{{ number }}"
"""


def test_dispatch_is_sensitive_and_routed_to_the_user_even_on_public_repos() -> None:
    event = comment_event("please\n/symbiote deploy prod\n")
    [request] = planner_for(DEPLOY).plan(event, "octo")
    assert request.kind is ActionKind.DISPATCH
    assert request.repo == "octo/symbiote"
    assert request.workflow == "deploy.yml"
    assert request.ref == "main"
    assert request.inputs == {"env": "prod", "title": "Ship it", "number": "7"}
    assert request.auth is AuthMode.USER
    assert is_sensitive(request)
    ctx = RoutingContext.build("octo", planned={event.id: (summarize([request]), True)})
    decision = route_event(event, ctx)
    assert decision.route is Route.USER
    assert "sensitive" in decision.reason


def test_dispatch_only_for_the_users_own_comment() -> None:
    assert planner_for(DEPLOY).plan(comment_event("/symbiote deploy prod", actor="mallory"), "octo") == []


def test_dispatch_without_a_known_fork_plans_nothing_and_says_why() -> None:
    explanation = planner_for(DEPLOY, fork=None).explain(comment_event("/symbiote deploy"), "octo")
    assert explanation.requests == ()
    assert "SYMBIOTE_REPO" in explanation.checks[0].detail


def test_dispatch_rule_must_say_who_may_trigger_it() -> None:
    text = "rules:\n  - event: IssueCommentEvent\n    do: {kind: dispatch, workflow: d.yml}\n"
    assert problems_of(text) == [
        (
            "rules.yml:2: rules[0].actor: a dispatch rule must say who may trigger it: actor: self (recommended) "
            "or actor: any"
        )
    ]


def test_dispatch_inputs_are_bounded_strings_without_control_characters() -> None:
    text = DEPLOY.replace('title: "{{ title }}"', 'title: "{{ title }}"\n        url: "{{ url }}"')
    payload = {
        "action": "created",
        "issue": {"number": 7, "title": "a\x00b\nc\u202ed" + "x" * 5000},
        "comment": {"id": 9, "body": "/symbiote deploy prod"},
    }
    [request] = planner_for(text).plan(make_event("IssueCommentEvent", payload), "octo")
    title = request.inputs["title"]
    assert title.startswith("a b cd")
    assert len(title) == MAX_INPUT
    assert all(ch.isprintable() for ch in title)
    assert all(isinstance(v, str) for v in request.inputs.values())
    assert request.inputs["url"] == ""


# -- templates --------------------------------------------------------------------------------------


def test_templates_substitute_whitelisted_fields_once() -> None:
    text = """
rules:
  - event: IssuesEvent
    do:
      kind: comment
      body: "{{ title }} in {{repo}} ({{ repo.owner }}/{{ repo.name }}, {{ visibility }}) #{{ number }} by {{ actor }}"
"""
    payload = {"action": "opened", "issue": {"number": 4, "title": "{{ user }} {{event.id}}"}}
    [request] = planner_for(text).plan(make_event(payload=payload), "octo")
    assert request.body == "{{ user }} {{event.id}} in octo/hello (octo/hello, public) #4 by octo"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ titel }}", "did you mean {{ title }}"),
        ("{{ event.payload.secret }}", "unknown field"),
        ("{{ __class__ }}", "unknown field"),
        ("{{ title", "malformed placeholder"),
        ("{title}} }}", "malformed placeholder"),
        ("x" * 10_001, "longer than"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_template(template)
    assert message in str(info.value)


def test_comment_values_cannot_smuggle_a_marker_html_or_mentions() -> None:
    text = 'rules:\n  - event: IssuesEvent\n    do: {kind: comment, body: "Seen: {{ title }}"}\n'
    title = f"{MARKER_PREFIX}comment key=ack-1 --> <img src=x> @everyone"
    payload = {"action": "opened", "issue": {"number": 4, "title": title}}
    [request] = planner_for(text).plan(make_event(payload=payload), "octo")
    assert request.body is not None
    assert MARKER_PREFIX not in request.body
    assert "<" not in request.body
    assert "@everyone" not in request.body
    assert "key=ack-1" in request.body  # shown, but inert


def test_rules_cannot_write_the_marker_themselves() -> None:
    text = f'rules:\n  - event: IssuesEvent\n    do: {{kind: comment, body: "x {MARKER_PREFIX}comment key=a -->"}}\n'
    [problem] = problems_of(text)
    assert "rules[0].do.body: the hidden idempotency marker is added by Symbiote itself" in problem


def test_match_groups_must_exist_in_the_pattern() -> None:
    text = """
rules:
  - name: a
    event: IssueCommentEvent
    do: {kind: comment, body: "{{ match.1 }}"}
  - name: b
    event: IssueCommentEvent
    text: '(?P<env>\\w+)'
    do: {kind: label, labels: ["{{ match.2 }}", "{{ match.nope }}", "{{ match.env }}"]}
"""
    assert problems_of(text) == [
        "rules.yml:5: rules[0].do.body: uses {{ match.1 }} but the rule has no text pattern",
        "rules.yml:9: rules[1].do.labels[0]: uses {{ match.2 }} but the text pattern has 1 groups",
        "rules.yml:9: rules[1].do.labels[1]: uses {{ match.nope }} but the text pattern has no group 'nope' (env)",
    ]


# -- matching ---------------------------------------------------------------------------------------


MATCHING = """
rules:
  - name: mine-private
    event: [IssuesEvent]
    action: [opened, reopened]
    repo: ["OCTO/*"]
    owner: self
    visibility: private
    do: {kind: label, labels: [mine]}
  - name: others
    event: issues
    repo: "*/docs"
    owner: others
    do: {kind: label, labels: ["docs-{{ event.action }}"]}
  - name: rest
    event: "*"
    do: none
"""


@pytest.mark.parametrize(
    ("repo", "public", "action", "user", "expected", "why"),
    [
        ("octo/hello", False, "opened", "octo", ["mine"], ""),
        ("octo/hello", False, "reopened", "OCTO", ["mine"], ""),
        ("octo/hello", True, "opened", "octo", [], "repository is public, rule wants private"),
        ("octo/hello", False, "closed", "octo", [], "action is closed, rule wants opened, reopened"),
        ("other/hello", False, "opened", "other", [], "matches none of OCTO/*"),
        ("octo/hello", False, "opened", "someone", [], "owner octo is not you"),
        ("acme/docs", True, "closed", "octo", ["docs-closed"], ""),
    ],
)
def test_matching(repo: str, public: bool, action: str, user: str, expected: list[str], why: str) -> None:
    event = make_event(payload={"action": action, "issue": {"number": 2}}, repo=repo, public=public)
    explanation = planner_for(MATCHING).explain(event, user)
    labels = [label for r in explanation.requests for label in r.labels]
    assert labels == expected
    if why:
        assert why in explanation.checks[0].detail
    if not expected:
        assert explanation.matched[-1].name == "rest"  # the catch-all does nothing


def test_text_pattern_searches_only_the_first_64_kib() -> None:
    text = "rules:\n  - event: IssueCommentEvent\n    text: 'needle'\n    do: {kind: reaction, reaction: eyes}\n"
    planner = planner_for(text)
    assert planner.plan(comment_event("x" * (TEXT_LIMIT - 10) + "needle"), "octo")
    assert planner.plan(comment_event("x" * TEXT_LIMIT + "needle"), "octo") == []


TITLE_RULES = """
rules:
  - name: bug
    event: [IssuesEvent, PullRequestEvent, IssueCommentEvent]
    text: '(?i)\\b(?P<word>crash(es)?|bug)\\b'
    do: {kind: label, labels: ["{{ match.word }}"]}
"""


@pytest.mark.parametrize(
    ("type_", "key"),
    [("IssuesEvent", "issue"), ("PullRequestEvent", "pull_request")],
)
@pytest.mark.parametrize("body", [None, "", "Steps: open the app."])
def test_text_pattern_also_searches_the_issue_or_pr_title(type_: str, key: str, body: str | None) -> None:
    """A report that says it all in its title matches, whatever (or however empty) its body."""
    payload = {"action": "opened", key: {"number": 7, "title": "App crashes on start", "body": body}}
    [request] = planner_for(TITLE_RULES).plan(make_event(type_, payload), "octo")
    assert (request.kind, request.labels, request.issue_number) == (ActionKind.LABEL, ["crashes"], 7)


def test_text_pattern_tries_the_title_before_the_body() -> None:
    payload = {"action": "opened", "issue": {"number": 7, "title": "A bug", "body": "It crashes"}}
    [request] = planner_for(TITLE_RULES).plan(make_event(payload=payload), "octo")
    assert request.labels == ["bug"]


def test_text_pattern_miss_on_title_and_body_says_so() -> None:
    payload = {"action": "opened", "issue": {"number": 7, "title": "Dark theme", "body": "Please."}}
    explanation = planner_for(TITLE_RULES).explain(make_event(payload=payload), "octo")
    assert explanation.requests == ()
    assert explanation.checks[0].detail == "neither title nor text matches the pattern"


def test_comment_text_pattern_ignores_the_threads_title() -> None:
    """A comment is matched on what its author wrote, not on the title of the issue it is in."""
    event = comment_event("Thanks, looks good.")
    event.payload["issue"]["title"] = "App crashes on start"
    explanation = planner_for(TITLE_RULES).explain(event, "octo")
    assert explanation.requests == ()
    assert explanation.checks[0].detail == "text does not match the pattern"
    assert planner_for(TITLE_RULES).plan(comment_event("It crashes here too"), "octo")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)*b*(x+)*", "(?:\\s*\\w+)+", "(a*)*"])
def test_catastrophic_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="nested unbounded"):
        compile_pattern(pattern)


def test_long_or_broken_patterns_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        compile_pattern("a" * (MAX_PATTERN + 1))
    with pytest.raises(ValueError, match="not a regular expression"):
        compile_pattern("(unclosed")


@pytest.mark.parametrize(
    "pattern", ["^/symbiote deploy(?:[ \\t]+(?P<env>[a-z]{1,20}))?$", "(?i)\\b(bug|crash(es)?)\\b", "a{2,5}(b+)?"]
)
def test_ordinary_patterns_compile(pattern: str) -> None:
    assert compile_pattern(pattern).flags & 8  # re.MULTILINE


def test_first_match_wins_unless_continue_and_keys_are_per_rule() -> None:
    text = """
rules:
  - name: first
    event: IssuesEvent
    continue: true
    do: {kind: label, labels: [a]}
  - name: second
    event: IssuesEvent
    do: {kind: reaction, reaction: +1}
  - name: third
    event: IssuesEvent
    do: {kind: comment, body: never}
"""
    explanation = planner_for(text).explain(make_event(), "octo")
    assert [(r.kind, r.idempotency_key) for r in explanation.requests] == [
        (ActionKind.LABEL, "first-40000000001"),
        (ActionKind.REACTION, "second-40000000001"),
    ]
    assert explanation.requests[1].reaction == "+1"
    assert explanation.checks[2].detail == "not evaluated: an earlier rule matched"


def test_idempotency_keys_are_deterministic_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(MATCHING, encoding="utf-8")
    event = make_event(payload={"action": "opened", "issue": {"number": 2}}, public=False)
    first = load_planner(settings(config=path)).plan(event, "octo")
    second = load_planner(settings(config=path)).plan(event, "octo")
    assert [r.idempotency_key for r in first] == [r.idempotency_key for r in second] == ["mine-private-40000000001"]
    unnamed = "rules:\n  - event: IssuesEvent\n    do: {kind: label, labels: [x]}\n"
    assert [r.idempotency_key for r in planner_for(unnamed).plan(event, "octo")] == ["rule-1-40000000001"]


def test_reactions_go_on_the_comment_else_on_the_issue() -> None:
    text = "rules:\n  - event: '*'\n    do: {kind: reaction, reaction: eyes}\n"
    planner = planner_for(text)
    [on_comment] = planner.plan(comment_event("hi"), "octo")
    assert (on_comment.comment_id, on_comment.issue_number) == (99, None)
    [on_issue] = planner.plan(make_event(), "octo")
    assert (on_issue.comment_id, on_issue.issue_number) == (None, 7)
    review = make_event(
        "PullRequestReviewCommentEvent", {"action": "created", "pull_request": {"number": 3}, "comment": {"id": 4}}
    )
    [on_pr] = planner.plan(review, "octo")
    assert (on_pr.comment_id, on_pr.issue_number) == (None, 3)
    assert planner.plan(make_event("PushEvent", {"ref": "x"}), "octo") == []


def test_our_own_marked_comments_are_never_planned_for() -> None:
    text = "rules:\n  - event: '*'\n    do: {kind: comment, body: again}\n"
    explanation = planner_for(text).explain(comment_event(f"hello\n{MARKER_PREFIX}comment key=x -->"), "octo")
    assert explanation.requests == ()
    assert "own comment" in explanation.note


def test_kernel_and_none_kinds() -> None:
    text = """
rules:
  - name: k
    event: IssuesEvent
    repo: kernel/*
    do: kernel
  - name: n
    event: IssuesEvent
    do: {kind: none}
"""
    planner = planner_for(text)
    [request] = planner.plan(make_event(repo="kernel/app"), "octo")
    assert request.kind is ActionKind.KERNEL
    assert not is_sensitive(request)
    assert planner.plan(make_event(), "octo") == []


# -- the file: errors name line and field --------------------------------------------------------------


BAD = """version: 1
rules:
  - name: one
    event: IssueEvent
    visibility: secret
    do:
      kind: comment
      body: "hello {{ titel }}"
  - event: PushEvent
    colour: red
    do: {kind: label}
  - event: PushEvent
    name: x
    name: y
    do: {kind: nope}
"""


def test_problems_name_file_line_and_field() -> None:
    assert problems_of(BAD) == [
        (
            "rules.yml:4: rules[0].event[0]: unknown event type 'IssueEvent' (did you mean IssuesEvent?); "
            "use an events API type such as IssuesEvent, Notification, or *"
        ),
        "rules.yml:5: rules[0].visibility: Input should be 'public', 'private' or 'any'",
        (
            "rules.yml:8: rules[0].do.body: unknown field {{ titel }} (did you mean {{ title }}?); fields: event.id, "
            "event.type, event.action, event.created_at, repo, repo.owner, repo.name, visibility, number, title, url, "
            "actor, reason, subject, user, fork, match, match.N, match.NAME"
        ),
        "rules.yml:10: rules[1].colour: unknown field",
        "rules.yml:11: rules[1].do.labels: required field is missing",
        "rules.yml:14: rules[2].name: duplicate key",
        (
            "rules.yml:15: rules[2].do: Input tag 'nope' found using 'kind' does not match any of the expected tags: "
            "'comment', 'reaction', 'label', 'dispatch', 'kernel', 'none'"
        ),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "rules.yml:1: the file is empty"),
        ("- a\n- b\n", "rules.yml:1: the file must be a mapping"),
        ("rules:\n  - event: [IssuesEvent\n", "rules.yml:3: YAML: expected ',' or ']'"),
        ("a: &x [1]\nb: *x\n", "rules.yml:2: b: anchors and aliases"),
        ("version: 2\nrules: []\n", "rules.yml:1: version: Input should be 1"),
        ("rules:\n  - event: IssuesEvent\n    do: {kind: reaction, reaction: thumbsup}\n", "do.reaction: reaction"),
        (
            "rules:\n  - event: IssuesEvent\n    actor: self\n    do: {kind: dispatch, workflow: ../x}\n",
            "rules.yml:4: rules[0].do.workflow: a workflow file name",
        ),
        ("rules:\n  - event: IssuesEvent\n    repo: 'a b'\n    do: none\n", "rules[0].repo[0]: not a repository glob"),
        ("rules: [{event: IssuesEvent, key: k, do: none}, {event: IssuesEvent, key: k, do: none}]\n", "also rule 1's"),
        ("rules:\n  - {event: IssuesEvent, name: a, do: none}\n  - {event: '*', name: a, do: none}\n", "already used"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    assert any(expected in p for p in problems_of(text)), problems_of(text)


def test_shorthands_and_yaml_quirks() -> None:
    text = (
        "rules:\n  - {event: issues, action: opened, do: none}\n"
        "  - {event: IssuesEvent, do: {kind: reaction, reaction: -1}}\n"
    )
    ruleset = parse_rules(text)
    assert ruleset.rules[0].event == ["IssuesEvent"]
    assert ruleset.rules[0].do.kind == "none"
    assert ruleset.rules[1].do.kind == "reaction"


def test_semantic_problems_also_stop_a_planner_built_in_code() -> None:
    ruleset = RuleSet.model_validate(
        {"rules": [{"event": "IssuesEvent", "do": {"kind": "dispatch", "workflow": "d.yml"}}]}
    )
    with pytest.raises(ValueError, match="who may trigger"):
        RulesPlanner(ruleset)


def test_oversized_file_is_refused() -> None:
    assert "larger than" in problems_of("#" * (300 * 1024))[0]


# -- choosing the planner ----------------------------------------------------------------------------


def test_load_planner_without_a_file_uses_the_builtin_rules(tmp_path: Path) -> None:
    planner = load_planner(settings(storage_repo=tmp_path))
    assert planner.source == "built-in rules"
    assert planner.ruleset == BUILTIN_RULES
    assert planner.plan(make_event(), "octo") == DefaultRules().plan(make_event(), "octo")


def test_load_planner_reads_the_forks_file_then_symbiote_config(tmp_path: Path) -> None:
    fork_file = tmp_path / ".github" / "symbiote.yml"
    fork_file.parent.mkdir()
    fork_file.write_text("rules:\n  - {name: from-fork, event: IssuesEvent, do: none}\n", encoding="utf-8")
    assert rules_path(settings(storage_repo=tmp_path)) == fork_file
    assert load_planner(settings(storage_repo=tmp_path)).ruleset.rules[0].name == "from-fork"
    other = tmp_path / "other.yml"
    other.write_text("rules:\n  - {name: from-config, event: IssuesEvent, do: none}\n", encoding="utf-8")
    planner = load_planner(settings(storage_repo=tmp_path, config=other))
    assert planner.ruleset.rules[0].name == "from-config"
    assert planner.source == str(other)


def test_missing_or_invalid_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_planner(settings(config=tmp_path / "nope.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("rules:\n  - event: Nope\n    do: none\n", encoding="utf-8")
    with pytest.raises(RulesFileError, match=r"bad\.yml:2: rules\[0\]\.event\[0\]"):
        load_planner(settings(config=bad))


def test_fork_comes_from_symbiote_repo_else_github_repository() -> None:
    assert fork_repo(settings(repo="me/symbiote"), {"GITHUB_REPOSITORY": "x/y"}) == "me/symbiote"
    assert fork_repo(settings(), {"GITHUB_REPOSITORY": "x/y"}) == "x/y"
    assert fork_repo(settings(), {}) is None
    with pytest.raises(ConfigError):
        fork_repo(settings(repo="not a repo"), {})


def test_explain_routes_like_poll() -> None:
    [explained] = explain_events(settings(kernel_repos=["octo/hello"]), [make_event()], user="octo")
    assert explained.decision.route is Route.KERNEL
    assert explained.explanation.requests
    data = explained.as_json()
    assert data["route"]["route"] == "kernel"
    assert data["plan"][0]["idempotency_key"] == "ack-40000000001"


# -- the commands ------------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GITHUB_", "GH_"))}
    clean.update({"NO_COLOR": "1", "COLUMNS": "200", **env})
    return subprocess.run(
        [sys.executable, "-m", "symbiote_cli", *args],
        cwd=cwd,
        env=clean,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_rules_check_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(DEPLOY, encoding="utf-8")
    done = run_cli("rules", "check", str(good), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{good}: 1 rules, valid (deploy)"
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD, encoding="utf-8")
    done = run_cli("rules", "check", str(bad), cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stdout.splitlines()
    assert len(lines) == 7
    assert lines[0].startswith(f"{bad}:4: rules[0].event[0]: unknown event type")
    assert "7 problems in" in done.stderr
    none = run_cli("rules", "check", cwd=tmp_path, SYMBIOTE_STORAGE_REPO=str(tmp_path))
    assert none.returncode == 0
    assert "built-in rules apply" in none.stdout
    missing = run_cli("rules", "check", str(tmp_path / "nope.yml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_rules_explain_command(tmp_path: Path) -> None:
    rules = tmp_path / "deploy.yml"
    rules.write_text(DEPLOY, encoding="utf-8")
    event = comment_event("/symbiote deploy prod").model_dump(mode="json")
    done = run_cli(
        "rules", "explain", "-", "--rules", str(rules), cwd=tmp_path, stdin=json.dumps(event), SYMBIOTE_REPO="octo/sym"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "event 40000000001 IssueCommentEvent created in octo/hello#7 (public) by @octo, for @octo",
        f"rules: {rules}",
        "  match 1 deploy (dispatch): matched",
        "plan:",
        "  dispatch deploy.yml in octo/sym (ref main, key deploy-40000000001, auth user, sensitive: the user's token)",
        '    inputs: env="prod", title="Ship it", number="7"',
        "route: user (sensitive action: dispatch with the user's token)",
    ]
    done = run_cli("rules", "explain", "-", "--json", cwd=tmp_path, stdin=json.dumps(event))
    data = json.loads(done.stdout)
    assert data["rules"] == "built-in rules"
    assert data["plan"][0]["kind"] == "comment"
    assert data["route"]["route"] == "app"


def test_action_request_round_trip_for_every_planned_kind() -> None:
    text = """
rules:
  - {name: c, event: IssuesEvent, continue: true, do: {kind: comment, body: hi}}
  - {name: r, event: IssuesEvent, continue: true, do: {kind: reaction, reaction: rocket}}
  - {name: l, event: IssuesEvent, continue: true, do: {kind: label, labels: [a, "  ", a, b]}}
  - {name: d, event: IssuesEvent, actor: any, continue: true, do: {kind: dispatch, workflow: "123", repo: "{{ repo }}"}}
  - {name: k, event: IssuesEvent, do: kernel}
"""
    requests = planner_for(text).plan(make_event(), "octo")
    assert [r.kind.value for r in requests] == ["comment", "reaction", "label", "dispatch", "kernel"]
    assert requests[2].labels == ["a", "b"]
    assert requests[3].repo == "octo/hello"
    for request in requests:
        request.check_complete()
        assert ActionRequest.model_validate_json(request.model_dump_json()) == request


# -- notifications -------------------------------------------------------------------------------------


def thread(
    reason: str = "review_requested",
    subject: str = "PullRequest",
    *,
    number: int | None = 7,
    repo: str = "octo/hello",
    private: bool = False,
    title: str = "Add the dark theme",
    thread_id: str = "123",
    updated_at: str = "2026-11-24T10:00:00Z",
) -> dict[str, Any]:
    """A thread as ``GET /notifications`` lists it (https://docs.github.com/rest/activity/notifications)."""
    path = {"PullRequest": "pulls", "Issue": "issues"}.get(subject)
    url = f"https://api.github.com/repos/{repo}/{path}/{number}" if path and number else None
    return {
        "id": thread_id,
        "reason": reason,
        "unread": True,
        "updated_at": updated_at,
        "last_read_at": None,
        "subject": {"title": title, "url": url, "latest_comment_url": url, "type": subject},
        "repository": {"full_name": repo, "private": private, "html_url": f"https://github.com/{repo}"},
        "url": f"https://api.github.com/notifications/threads/{thread_id}",
    }


def notification(*args: Any, **kw: Any) -> Notification:
    return Notification.model_validate(thread(*args, **kw))


NOTIFICATION_RULES = """
rules:
  - name: ack-reviews
    event: Notification
    reason: review_requested
    subject: PullRequest
    mark_read: true
    do: {kind: comment, body: "Thanks, {{ actor }}{{ user }}: '{{ title }}' ({{ reason }} on {{ subject }}) {{ url }}"}
  - name: eyes-on-mentions
    event: Notification
    reason: [mention, team_mention]
    subject: [Issue, PullRequest]
    do: {kind: reaction, reaction: eyes}
"""


def test_a_review_request_plans_one_comment_that_marks_the_thread_read() -> None:
    item = notification()
    [request] = planner_for(NOTIFICATION_RULES).plan(item, "me")
    assert request.kind is ActionKind.COMMENT
    assert (request.repo, request.issue_number, request.thread_id) == ("octo/hello", 7, "123")
    assert request.idempotency_key == f"ack-reviews-{item.id}" == "ack-reviews-n123-20261124T100000Z"
    assert request.event_id == item.id
    # {{ actor }} is empty (a notification names none); title, reason, subject and url are the thread's.
    assert request.body == (
        "Thanks, me: 'Add the dark theme' (review_requested on PullRequest) https://github.com/octo/hello/pull/7"
    )
    assert request.auth is AuthMode.APP  # public repo, safe action
    request.check_complete()


def test_a_mention_on_an_issue_plans_a_reaction_without_marking_read() -> None:
    [request] = planner_for(NOTIFICATION_RULES).plan(notification("mention", "Issue", number=12), "me")
    assert (request.kind, request.reaction, request.issue_number) == (ActionKind.REACTION, "eyes", 12)
    assert request.comment_id is None
    assert request.thread_id is None  # the rule has no mark_read


@pytest.mark.parametrize(
    ("reason", "subject", "why"),
    [
        ("subscribed", "PullRequest", "rule 1: reason is subscribed, rule wants review_requested"),
        ("review_requested", "Issue", "rule 1: subject is Issue, rule wants PullRequest"),
        ("mention", "Discussion", "rule 2: subject is Discussion, rule wants Issue, PullRequest"),
        ("author", "Issue", "rule 2: reason is author, rule wants mention, team_mention"),
    ],
)
def test_notification_mismatches_say_why(reason: str, subject: str, why: str) -> None:
    explanation = planner_for(NOTIFICATION_RULES).explain(notification(reason, subject), "me")
    assert explanation.requests == ()
    rule = int(why.split(":", maxsplit=1)[0].removeprefix("rule "))
    assert f"rule {rule}: {explanation.checks[rule - 1].detail}" == why


def test_each_update_of_a_thread_is_its_own_item_and_key() -> None:
    planner = planner_for(NOTIFICATION_RULES)
    first = planner.plan(notification("mention", "Issue"), "me")
    again = planner.plan(notification("mention", "Issue"), "me")
    later = planner.plan(notification("mention", "Issue", updated_at="2026-11-25T08:00:00Z"), "me")
    assert first == again
    assert [r.idempotency_key for r in first + later] == [
        "eyes-on-mentions-n123-20261124T100000Z",
        "eyes-on-mentions-n123-20261125T080000Z",
    ]


def test_reason_and_subject_never_match_an_event() -> None:
    text = """
rules:
  - {name: r, event: '*', reason: mention, do: none}
  - {name: s, event: '*', subject: Issue, do: none}
"""
    explanation = planner_for(text).explain(make_event(), "octo")
    assert [c.detail for c in explanation.checks] == [
        "not a notification: rule wants reason mention",
        "not a notification: rule wants subject Issue",
    ]


def test_star_matches_notifications_too() -> None:
    text = "rules:\n  - {name: all, event: '*', do: {kind: label, labels: ['{{ reason }}']}}\n"
    [request] = planner_for(text).plan(notification("assign", "Issue"), "me")
    assert request.labels == ["assign"]
    # ... and events: {{ reason }} is empty there, so the label renders empty and nothing is planned.
    explanation = planner_for(text).explain(make_event(), "octo")
    assert explanation.checks[0].detail == "matched, but every label rendered empty"


@pytest.mark.parametrize("actor", ["self", "others"])
def test_actor_cannot_be_told_for_a_notification(actor: str) -> None:
    text = f"rules:\n  - {{name: a, event: Notification, actor: {actor}, do: {{kind: reaction, reaction: eyes}}}}\n"
    explanation = planner_for(text).explain(notification(), "me")
    assert explanation.requests == ()
    assert explanation.checks[0].detail == (
        f"a notification names no actor: actor: {actor} cannot be told (use reason: instead)"
    )
    any_actor = text.replace(f"actor: {actor}", "actor: any")
    assert planner_for(any_actor).plan(notification(), "me")


def test_a_notification_text_pattern_searches_its_title() -> None:
    text = "rules:\n  - {name: t, event: Notification, text: '(?i)dark theme', do: {kind: label, labels: [ui]}}\n"
    assert planner_for(text).plan(notification(title="Add the Dark Theme"), "me")
    explanation = planner_for(text).explain(notification(title="Fix the build"), "me")
    assert explanation.checks[0].detail == "title does not match the pattern"


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        ("{kind: comment, body: hi}", "matched, but the notification has no issue or pull request to comment on"),
        ("{kind: reaction, reaction: eyes}", "matched, but the notification has nothing to react to"),
        ("{kind: label, labels: [x]}", "matched, but the notification has no issue or pull request to label"),
    ],
)
def test_a_notification_without_an_issue_or_pr_has_nothing_to_act_on(kind: str, detail: str) -> None:
    text = f"rules:\n  - {{name: r, event: Notification, reason: subscribed, mark_read: true, do: {kind}}}\n"
    for subject in ("Release", "Commit", "CheckSuite"):
        explanation = planner_for(text).explain(notification("subscribed", subject, number=None), "me")
        assert explanation.requests == ()
        assert explanation.checks[0].detail == detail


def test_a_private_repos_notification_is_acted_on_with_the_users_token() -> None:
    [request] = planner_for(NOTIFICATION_RULES).plan(notification(private=True), "me")
    assert (request.private, request.auth) == (True, AuthMode.USER)


def test_without_a_rules_file_notifications_are_only_recorded() -> None:
    item = notification("mention", "Issue")
    assert DefaultRules().plan(item, "me") == []
    assert builtin_planner().plan(item, "me") == []
    decision = route_event(item, RoutingContext.build("me", planned={item.id: ("", False)}))
    assert decision.route is Route.IGNORE


def test_notification_rule_fields_are_checked() -> None:
    text = """
rules:
  - name: a
    event: Notifications
    do: none
  - name: b
    event: Notification
    reason: [mention, reviw_requested]
    do: none
  - name: c
    event: Notification
    subject: pull_request
    do: none
  - name: d
    event: Notification
    subject: Gist
    do: none
"""
    assert problems_of(text) == [
        (
            "rules.yml:4: rules[0].event[0]: unknown event type 'Notifications' (did you mean Notification?); "
            "use an events API type such as IssuesEvent, Notification, or *"
        ),
        (
            "rules.yml:8: rules[1].reason[1]: unknown notification reason 'reviw_requested' (did you mean "
            f"review_requested?); one of {', '.join(sorted(NOTIFICATION_REASONS))}"
        ),
        (
            "rules.yml:12: rules[2].subject[0]: unknown subject type 'pull_request' (did you mean PullRequest?); "
            f"one of {', '.join(sorted(SUBJECT_TYPES))}"
        ),
        f"rules.yml:16: rules[3].subject[0]: unknown subject type 'Gist'; one of {', '.join(sorted(SUBJECT_TYPES))}",
    ]


def test_notification_fields_only_on_rules_that_can_match_notifications() -> None:
    text = """
rules:
  - name: a
    event: IssuesEvent
    reason: mention
    subject: Issue
    mark_read: true
    do: {kind: reaction, reaction: eyes}
  - name: b
    event: Notification
    mark_read: true
    do: none
  - name: c
    event: [Notification]
    mark_read: true
    do: kernel
  - name: d
    event: Notification
    do: {kind: dispatch, workflow: d.yml}
"""
    wants = "is about notifications: add Notification to the rule's event (or use *)"
    assert problems_of(text) == [
        f"rules.yml:5: rules[0].reason: reason {wants}",
        f"rules.yml:6: rules[0].subject: subject {wants}",
        f"rules.yml:7: rules[0].mark_read: mark_read {wants}",
        (
            "rules.yml:11: rules[1].mark_read: mark_read marks the thread read after the action succeeded: do.kind "
            "none does nothing to succeed (use comment, reaction, label or dispatch)"
        ),
        (
            "rules.yml:15: rules[2].mark_read: mark_read marks the thread read after the action succeeded: do.kind "
            "kernel does nothing to succeed (use comment, reaction, label or dispatch)"
        ),
        (
            "rules.yml:17: rules[3].actor: a dispatch rule must say who may trigger it: a notification names no "
            "actor, so actor: any (anyone who can notify you triggers it)"
        ),
    ]
    # On '*' or a list that includes Notification they are fine.
    parse_rules("rules:\n  - {event: ['*'], reason: mention, mark_read: true, do: {kind: reaction, reaction: eyes}}\n")
    parse_rules("rules:\n  - {event: [IssuesEvent, Notification], subject: Issue, do: none}\n")


def test_every_documented_reason_and_subject_is_accepted() -> None:
    reasons = sorted(NOTIFICATION_REASONS)
    ruleset = parse_rules(f"rules:\n  - {{event: Notification, reason: [{', '.join(reasons)}], do: none}}\n")
    assert ruleset.rules[0].reason == reasons
    # https://docs.github.com/rest/activity/notifications#about-notification-reasons
    assert {"review_requested", "mention", "team_mention", "assign", "approval_requested"} <= NOTIFICATION_REASONS
    assert {"Issue", "PullRequest", "Discussion", "Release", "Commit", "CheckSuite"} <= SUBJECT_TYPES


def test_explain_a_notification_names_its_reason_and_subject_not_an_actor() -> None:
    rules = planner_for(NOTIFICATION_RULES)
    [explained] = rulesfile.explain_events(rules, [notification(private=True, title="secret plan")], user="me")
    assert explained.lines()[0] == (
        "notification n123-20261124T100000Z review_requested on PullRequest octo/hello#7 (private), for @me"
    )
    assert "(key ack-reviews-n123-20261124T100000Z, auth user, thread 123)" in explained.lines()[5]
    assert "comment on octo/hello#7, then mark the notification thread read" in explained.lines()[5]
    data = explained.as_json()
    assert (data["type"], data["source"], data["reason"], data["subject"], data["number"], data["thread_id"]) == (
        "Notification",
        "notifications",
        "review_requested",
        "PullRequest",
        7,
        "123",
    )
    assert data["plan"][0]["thread_id"] == "123"
    assert "secret plan" not in json.dumps({k: v for k, v in data.items() if k != "plan"})


def test_explain_a_notification_needs_to_know_whose_it_is() -> None:
    with pytest.raises(InputError, match="a notification names no actor: say whose notifications these are"):
        rulesfile.explain_events(planner_for(NOTIFICATION_RULES), [make_event(), notification()])


def test_rules_explain_command_reads_notifications_mixed_with_events(tmp_path: Path) -> None:
    rules = tmp_path / "n.yml"
    rules.write_text(NOTIFICATION_RULES, encoding="utf-8")
    lines = [json.dumps(thread("mention", "Issue", number=3)), make_event().model_dump_json()]
    done = run_cli(
        "rules", "explain", "-", "--rules", str(rules), "--user", "me", cwd=tmp_path, stdin="\n".join(lines)
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "notification n123-20261124T100000Z mention on Issue octo/hello#3 (public), for @me"
    assert "  skip  1 ack-reviews (comment): reason is mention, rule wants review_requested" in out
    assert "  react eyes on octo/hello#3 (key eyes-on-mentions-n123-20261124T100000Z, auth app)" in out
    assert "event 40000000001 IssuesEvent opened in octo/hello#7 (public) by @octo, for @me" in out
    done = run_cli("rules", "explain", "-", "--rules", str(rules), cwd=tmp_path, stdin=json.dumps(thread()))
    assert done.returncode == 2
    assert "--user" in done.stderr
    assert "Traceback" not in done.stderr
