"""What Symbiote does for an event: rules that turn an event into action requests.

Planning is pure: a ``Planner`` looks at one item (an ``Event`` of the user's feed, or a
``Notification``: what others ask of them) and returns the action requests it wants;
routing then decides whose credentials (if any) carry them out, and the executor does
them. Nothing here touches the network or the disk (``rulesfile.py`` reads rules files).

A rule matches on the event type and payload action, a repository glob, the
repository owner, visibility, who acted, and optionally a regular expression on
the event's text (``searched_texts``: an issue's or PR's title and body, a
comment's or review's body, a notification's title); a notification rule
(``event: Notification``) also on its ``reason`` and ``subject`` type. It does one
action of a kind (``KINDS``). The first matching rule wins unless it says
``continue: true``. With no rules file the built-in rules (``BUILTIN_RULES``)
reproduce the seed's behaviour (``DefaultRules``): notifications are only recorded.

Event text is attacker controlled (anyone who can comment writes it), so:

* templates are a tiny ``{{ dotted.path }}`` substitution over a whitelist of
  event fields (``TEMPLATE_FIELDS``) done in one pass: substituted values are
  never themselves expanded, and nothing is ever evaluated or ``format``-ed;
* substituted values are cleaned for where they go: control characters removed,
  length bounded, and in comments ``<``, ``>`` and ``@`` neutralised (no hidden
  markers or HTML smuggled in, nobody pinged on the user's behalf);
* rules' regular expressions are bounded (pattern length, nested unbounded
  quantifiers rejected) and search only the first ``TEXT_LIMIT`` characters;
* the hidden idempotency marker is appended by the executor itself
  (``ActionRequest.marker``): no rule can leave it out;
* our own marked comments are never planned for, whatever the rules say.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from re import _constants as constants  # type: ignore[attr-defined]
from re import _parser as parser  # type: ignore[attr-defined]
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from symbiote_cli.core.models import (
    MARKER_PREFIX,
    NOTIFICATION_TYPE,
    REACTIONS,
    ActionKind,
    ActionRequest,
    AuthMode,
    Event,
    Item,
    Notification,
    valid_repo,
)

# Kinds that act with the user's authority even on public repos (routing sends them to
# ``user``). This is the one declaration; ``KINDS`` and routing read it.
SENSITIVE_KINDS = frozenset({ActionKind.DISPATCH})


class Planner(Protocol):
    """Anything that plans actions for an event or a notification (the default rules, a rules file)."""

    def plan(self, event: Item, user: str) -> list[ActionRequest]:
        """Actions for ``event`` in ``user``'s feed (or notifications); [] when there is nothing to do."""


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

    def plan(self, event: Item, user: str) -> list[ActionRequest]:
        # Without a rules file a notification is only recorded: answering what others ask needs the
        # user's own words (a rules file), not a generic acknowledgment.
        if isinstance(event, Notification):
            return []
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


# -- action kinds -------------------------------------------------------------------------


@dataclass(frozen=True)
class KindSpec:
    """What an action kind does, and what it takes."""

    kind: ActionKind
    summary: str
    writes: bool  # a content-creating write, paced by the write budget

    @property
    def sensitive(self) -> bool:
        return self.kind in SENSITIVE_KINDS


KINDS: Mapping[ActionKind, KindSpec] = {
    ActionKind.COMMENT: KindSpec(ActionKind.COMMENT, "post a comment (a template; the hidden marker is added)", True),
    ActionKind.REACTION: KindSpec(ActionKind.REACTION, "react to the comment, else to the issue or PR", True),
    ActionKind.LABEL: KindSpec(ActionKind.LABEL, "add labels to the issue or PR", True),
    ActionKind.DISPATCH: KindSpec(ActionKind.DISPATCH, "run a workflow_dispatch in the fork or a target repo", True),
    ActionKind.KERNEL: KindSpec(ActionKind.KERNEL, "leave it to the UbiquityOS kernel, and record that", False),
    ActionKind.NONE: KindSpec(ActionKind.NONE, "do nothing (stops later rules)", False),
}


# -- templates ------------------------------------------------------------------------------

MAX_TEMPLATE = 10_000  # characters of one template as written in the rules file
MAX_VALUE = 1_000  # characters of one substituted value
MAX_BODY = 60_000  # characters of a rendered comment (GitHub allows 65,536 with the marker)
MAX_INPUT = 1_024  # characters of one workflow_dispatch input
MAX_LABEL = 50  # GitHub's limit on a label name
MAX_PATTERN = 500  # characters of a rule's regular expression
TEXT_LIMIT = 64 * 1024  # only this much of an event's text is searched

TEMPLATE_FIELDS: Mapping[str, str] = {
    "event.id": "the event id (a notification's: thread and update, n<thread>-<time>)",
    "event.type": "IssuesEvent, IssueCommentEvent, ..., Notification",
    "event.action": "opened, created, ... (empty when the event has none; a notification's reason)",
    "event.created_at": "when it happened (ISO 8601; a notification's updated_at)",
    "repo": "owner/name of the repository",
    "repo.owner": "the repository owner",
    "repo.name": "the repository name",
    "visibility": "public or private",
    "number": "the issue or pull request number (empty when none)",
    "title": "the issue or pull request title (a notification's subject title)",
    "url": "link to the comment, review, issue or pull request",
    "actor": "login of whoever did it (empty for a notification: it names no actor)",
    "reason": "a notification's reason: review_requested, mention, ... (empty for events)",
    "subject": "a notification's subject type: PullRequest, Issue, ... (empty for events)",
    "user": "login of the user Symbiote acts for",
    "fork": "the fork running Symbiote (SYMBIOTE_REPO)",
    "match": "what the rule's text pattern matched",
    "match.N": "group N of it (match.1, match.2, ...)",
    "match.NAME": "the named group NAME of it",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
_MAX_PLACEHOLDERS = 50


def template_fields(template: str) -> list[str]:
    """The field names a template uses, in order."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template)]


def check_template(template: str) -> str:
    """Return ``template`` if well formed and every field is whitelisted; else raise ValueError."""
    if len(template) > MAX_TEMPLATE:
        raise ValueError(f"template longer than {MAX_TEMPLATE} characters")
    leftover = _PLACEHOLDER.sub("", template)
    if "{{" in leftover or "}}" in leftover:
        raise ValueError("malformed placeholder: write {{ field }} with a field such as {{ title }}")
    fields = template_fields(template)
    if len(fields) > _MAX_PLACEHOLDERS:
        raise ValueError(f"more than {_MAX_PLACEHOLDERS} placeholders")
    for name in fields:
        if name in TEMPLATE_FIELDS or name == "match" or name.startswith("match."):
            continue
        hint = difflib.get_close_matches(name, [f for f in TEMPLATE_FIELDS if "N" not in f], n=1)
        suggestion = f" (did you mean {{{{ {hint[0]} }}}}?)" if hint else ""
        known = ", ".join(f for f in TEMPLATE_FIELDS if not f.startswith("match."))
        raise ValueError(f"unknown field {{{{ {name} }}}}{suggestion}; fields: {known}, match.N, match.NAME")
    return template


def render_template(template: str, values: Mapping[str, str], clean: Callable[[str], str]) -> str:
    """Substitute ``{{ field }}`` once; values are cleaned and never expanded again."""
    return _PLACEHOLDER.sub(lambda m: clean(values.get(m.group(1), "")), template)


def strip_controls(text: str) -> str:
    """Drop control and format characters (newlines, NUL, bidi overrides, zero-width)."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc":
            out.append(" ")
        elif category not in ("Cf", "Cs", "Co"):
            out.append(ch)
    return "".join(out)


def clean_for_comment(value: str) -> str:
    """A value placed in a comment: one line, bounded, no HTML (so no fake marker), no mentions."""
    text = strip_controls(value)[:MAX_VALUE]
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("@", "@\u2060")


def clean_for_input(value: str) -> str:
    """A value placed in a workflow_dispatch input or a label: bounded, no control characters."""
    return strip_controls(value)[:MAX_INPUT]


def event_values(event: Item, user: str, fork: str | None, match: re.Match[str] | None) -> dict[str, str]:
    """The whitelisted fields of ``event`` a template may use (see ``TEMPLATE_FIELDS``)."""
    number = event.issue_number
    notification = event if isinstance(event, Notification) else None
    values = {
        "event.id": event.id,
        "event.type": event.type,
        "event.action": event.action or "",
        "event.created_at": event.created_at or "",
        "repo": event.repo_name,
        "repo.owner": event.owner,
        "repo.name": event.repo_name.split("/", 1)[1],
        "visibility": "private" if event.private else "public",
        "number": str(number) if number is not None else "",
        "title": event.title,
        "url": event.html_url or "",
        "actor": event.actor_login or "",
        "reason": notification.reason if notification else "",
        "subject": notification.subject_type if notification else "",
        "user": user,
        "fork": fork or "",
    }
    if match is not None:
        values["match"] = values["match.0"] = match.group(0)
        for index, group in enumerate(match.groups(), start=1):
            values[f"match.{index}"] = group or ""
        for name, group in match.groupdict().items():
            values[f"match.{name}"] = group or ""
    return values


# -- regular expressions ----------------------------------------------------------------------


def _unbounded_repeat_inside(items: Any, depth: int) -> bool:
    """True when a parsed pattern contains a repeat without upper bound (at any depth)."""
    for op, arg in items:
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT, constants.POSSESSIVE_REPEAT):
            _low, high, sub = arg
            if high == constants.MAXREPEAT or high > 100:
                return True
            if _unbounded_repeat_inside(sub, depth + 1):
                return True
        elif op == constants.SUBPATTERN:
            if _unbounded_repeat_inside(arg[-1], depth + 1):
                return True
        elif op == constants.BRANCH:
            if any(_unbounded_repeat_inside(branch, depth + 1) for branch in arg[1]):
                return True
        elif op in (constants.ATOMIC_GROUP, constants.ASSERT, constants.ASSERT_NOT):
            sub = arg if op == constants.ATOMIC_GROUP else arg[1]
            if _unbounded_repeat_inside(sub, depth + 1):
                return True
    return False


def _nested_quantifier(items: Any) -> bool:
    """True for ``(a+)+``-like shapes: an unbounded repeat of something that itself repeats."""
    for op, arg in items:
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT):
            _low, high, sub = arg
            if (high == constants.MAXREPEAT or high > 100) and _unbounded_repeat_inside(sub, 0):
                return True
            if _nested_quantifier(sub):
                return True
        elif op == constants.SUBPATTERN:
            if _nested_quantifier(arg[-1]):
                return True
        elif op == constants.BRANCH:
            if any(_nested_quantifier(branch) for branch in arg[1]):
                return True
        elif op in (constants.ASSERT, constants.ASSERT_NOT) and _nested_quantifier(arg[1]):
            return True
    return False


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a rule's text pattern (multi-line: ``^`` is the start of any line), refusing
    long patterns and nested unbounded quantifiers that can backtrack for ages."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"pattern longer than {MAX_PATTERN} characters")
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
    try:
        parsed = parser.parse(pattern, re.MULTILINE)
    except Exception:  # noqa: BLE001 - re's private parser changed: keep the length bound only
        return compiled
    if _nested_quantifier(parsed):
        raise ValueError("nested unbounded quantifiers such as (a+)+ can take forever on some text: simplify it")
    return compiled


# -- the rules file's schema ----------------------------------------------------------------------

# Event types of the events API (https://docs.github.com/rest/using-the-rest-api/github-event-types).
EVENT_TYPES = frozenset(
    {
        "CommitCommentEvent",
        "CreateEvent",
        "DeleteEvent",
        "DiscussionEvent",
        "ForkEvent",
        "GollumEvent",
        "IssueCommentEvent",
        "IssuesEvent",
        "MemberEvent",
        "PublicEvent",
        "PullRequestEvent",
        "PullRequestReviewEvent",
        "PullRequestReviewCommentEvent",
        "PullRequestReviewThreadEvent",
        "PushEvent",
        "ReleaseEvent",
        "SponsorshipEvent",
        "WatchEvent",
    }
)
# Webhook names people know from workflows' ``on:``, accepted as aliases.
WEBHOOK_NAMES: Mapping[str, str] = {
    "commit_comment": "CommitCommentEvent",
    "create": "CreateEvent",
    "delete": "DeleteEvent",
    "discussion": "DiscussionEvent",
    "fork": "ForkEvent",
    "gollum": "GollumEvent",
    "issue_comment": "IssueCommentEvent",
    "issues": "IssuesEvent",
    "member": "MemberEvent",
    "public": "PublicEvent",
    "pull_request": "PullRequestEvent",
    "pull_request_review": "PullRequestReviewEvent",
    "pull_request_review_comment": "PullRequestReviewCommentEvent",
    "pull_request_review_thread": "PullRequestReviewThreadEvent",
    "push": "PushEvent",
    "release": "ReleaseEvent",
    "sponsorship": "SponsorshipEvent",
    "watch": "WatchEvent",
}
# A notification of ``GET /notifications`` (what others ask of the user) is matched as this
# "type"; ``*`` matches it too (``*`` is anything).
NOTIFICATION_EVENT = NOTIFICATION_TYPE
# Why a notification was sent: https://docs.github.com/rest/activity/notifications#about-notification-reasons
NOTIFICATION_REASONS = frozenset(
    {
        "approval_requested",
        "assign",
        "author",
        "ci_activity",
        "comment",
        "invitation",
        "manual",
        "member_feature_requested",
        "mention",
        "review_requested",
        "security_advisory_credit",
        "security_alert",
        "state_change",
        "subscribed",
        "team_mention",
    }
)
# What a notification is about (``subject.type``). GitHub's reference gives no closed list (the
# OpenAPI ``thread.subject.type`` is a string); these are the types it sends
# (https://docs.github.com/rest/activity/notifications and the notifications inbox's filters).
SUBJECT_TYPES = frozenset(
    {
        "CheckSuite",
        "Commit",
        "Discussion",
        "Issue",
        "PullRequest",
        "Release",
        "RepositoryDependabotAlertsThread",
        "RepositoryInvitation",
        "RepositoryVulnerabilityAlert",
    }
)
# The kinds that act on GitHub; ``mark_read`` follows one of them once it succeeded.
ACTING_KINDS = frozenset({ActionKind.COMMENT, ActionKind.REACTION, ActionKind.LABEL, ActionKind.DISPATCH})

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_GLOB_RE = re.compile(r"^[A-Za-z0-9._/*?\[\]!-]{1,200}$")
_WORKFLOW_RE = re.compile(r"^(?:[0-9]{1,20}|[A-Za-z0-9._-]{1,200}\.ya?ml)$")
_REF_RE = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
_INPUT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _event_type(name: str) -> str:
    if name == "*" or name in EVENT_TYPES or name == NOTIFICATION_EVENT:
        return name
    if name in WEBHOOK_NAMES:
        return WEBHOOK_NAMES[name]
    known = sorted(EVENT_TYPES | set(WEBHOOK_NAMES) | {NOTIFICATION_EVENT})
    hint = difflib.get_close_matches(name, known, n=1) or difflib.get_close_matches(
        name.lower(), [k.lower() for k in known], n=1
    )
    if hint and hint[0] not in known:
        hint = [next(k for k in known if k.lower() == hint[0])]
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    raise ValueError(
        f"unknown event type {name!r}{suggestion}; use an events API type such as IssuesEvent, Notification, or *"
    )


def _reason(name: str) -> str:
    if name in NOTIFICATION_REASONS:
        return name
    hint = difflib.get_close_matches(name.lower(), sorted(NOTIFICATION_REASONS), n=1)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    known = ", ".join(sorted(NOTIFICATION_REASONS))
    raise ValueError(f"unknown notification reason {name!r}{suggestion}; one of {known}")


def _subject(name: str) -> str:
    if name in SUBJECT_TYPES:
        return name
    by_lower = {s.lower().replace("_", ""): s for s in SUBJECT_TYPES}
    hint = [by_lower[name.lower().replace("_", "")]] if name.lower().replace("_", "") in by_lower else []
    hint = hint or difflib.get_close_matches(name, sorted(SUBJECT_TYPES), n=1)
    suggestion = f" (did you mean {hint[0]}?)" if hint else ""
    raise ValueError(f"unknown subject type {name!r}{suggestion}; one of {', '.join(sorted(SUBJECT_TYPES))}")


def _action(name: str) -> str:
    if not _ACTION_RE.match(name):
        raise ValueError(f"not a payload action: {name!r} (lower case, like opened or created)")
    return name


def _glob(pattern: str) -> str:
    if not _GLOB_RE.match(pattern):
        raise ValueError(f"not a repository glob: {pattern!r} (like owner/*, */docs or owner/name)")
    return pattern


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError("1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


EventTypeName = Annotated[str, AfterValidator(_event_type)]
ReasonName = Annotated[str, AfterValidator(_reason)]
SubjectName = Annotated[str, AfterValidator(_subject)]
ActionName = Annotated[str, AfterValidator(_action)]
RepoGlob = Annotated[str, AfterValidator(_glob)]
Template = Annotated[str, AfterValidator(check_template)]
RuleName = Annotated[str, AfterValidator(_name)]
Who = Literal["self", "others", "any"]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def templates(self) -> dict[str, str]:
        """field path (as in the file) -> template, for checks of the fields they use."""
        return {}


class CommentAction(_Action):
    kind: Literal["comment"]
    body: Template = Field(min_length=1)

    @field_validator("body")
    @classmethod
    def _no_marker(cls, value: str) -> str:
        if MARKER_PREFIX in value:
            raise ValueError("the hidden idempotency marker is added by Symbiote itself: leave it out")
        return value

    def templates(self) -> dict[str, str]:
        return {"body": self.body}


class ReactionAction(_Action):
    kind: Literal["reaction"]
    reaction: str

    @field_validator("reaction", mode="before")
    @classmethod
    def _reaction(cls, value: Any) -> Any:
        # YAML reads an unquoted +1 as the number 1.
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, -1):
            value = f"{value:+d}"
        if value not in REACTIONS:
            raise ValueError(f"reaction must be one of {', '.join(REACTIONS)}")
        return value


class LabelAction(_Action):
    kind: Literal["label"]
    labels: Annotated[list[Template], BeforeValidator(_as_list)] = Field(min_length=1, max_length=20)

    def templates(self) -> dict[str, str]:
        return {f"labels.{i}": label for i, label in enumerate(self.labels)}


class DispatchAction(_Action):
    kind: Literal["dispatch"]
    workflow: str
    repo: Template | None = None  # default: the fork
    ref: str | None = None  # default: main
    inputs: dict[str, Template] = Field(default_factory=dict, max_length=25)

    @field_validator("workflow")
    @classmethod
    def _workflow(cls, value: str) -> str:
        if not _WORKFLOW_RE.match(value):
            raise ValueError("a workflow file name such as deploy.yml (or its numeric id)")
        return value

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None and (not _REF_RE.match(value) or ".." in value or value.startswith(("-", "/"))):
            raise ValueError("a branch or tag name such as main")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _INPUT_NAME_RE.match(name):
                raise ValueError(f"not a workflow input name: {name!r}")
        return value

    def templates(self) -> dict[str, str]:
        found = {f"inputs.{k}": v for k, v in self.inputs.items()}
        if self.repo is not None:
            found["repo"] = self.repo
        return found


class KernelAction(_Action):
    kind: Literal["kernel"]


class NoneAction(_Action):
    kind: Literal["none"]


ActionSpec = Annotated[
    CommentAction | ReactionAction | LabelAction | DispatchAction | KernelAction | NoneAction,
    Field(discriminator="kind"),
]


class Rule(BaseModel):
    """One rule: when an event matches, do one action."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: RuleName | None = None
    description: str = Field(default="", max_length=200)
    key: RuleName | None = None
    event: Annotated[list[EventTypeName], BeforeValidator(_as_list)] = Field(min_length=1, max_length=30)
    action: Annotated[list[ActionName] | None, BeforeValidator(_as_list)] = Field(default=None, max_length=30)
    repo: Annotated[list[RepoGlob], BeforeValidator(_as_list)] = Field(default=["*"], min_length=1, max_length=50)
    owner: Who = "any"
    visibility: Literal["public", "private", "any"] = "any"
    actor: Who | None = None
    text: str | None = None
    reason: Annotated[list[ReasonName] | None, BeforeValidator(_as_list)] = Field(default=None, max_length=30)
    subject: Annotated[list[SubjectName] | None, BeforeValidator(_as_list)] = Field(default=None, max_length=30)
    mark_read: bool = False
    do: ActionSpec
    continue_: bool = Field(default=False, alias="continue")

    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @field_validator("do", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # ``do: none`` / ``do: kernel`` for the kinds that take nothing.
        return {"kind": value} if isinstance(value, str) else value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)
        return value

    def model_post_init(self, context: Any, /) -> None:
        if self.text is not None:
            self._pattern = compile_pattern(self.text)

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern

    def label(self, index: int) -> str:
        """The rule's name, or ``rule-N`` (1-based) when it has none."""
        return self.name or f"rule-{index + 1}"

    def key_prefix(self, index: int) -> str:
        return self.key or self.label(index)

    def types(self) -> frozenset[str]:
        return frozenset(self.event)

    def takes_notifications(self) -> bool:
        """Whether the rule can match a notification (``event: Notification`` or ``*``)."""
        return bool(self.types() & {"*", NOTIFICATION_EVENT})


class RuleSet(BaseModel):
    """A rules file: ``version: 1`` and a list of ``rules``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    rules: list[Rule] = Field(default_factory=list, max_length=200)


Loc = tuple[str | int, ...]


def semantic_problems(ruleset: RuleSet) -> list[tuple[Loc, str]]:
    """Checks across fields that pydantic cannot make alone; each names where (a loc) and what."""
    problems: list[tuple[Loc, str]] = []
    names: dict[str, int] = {}
    keys: dict[str, list[int]] = {}
    for i, rule in enumerate(ruleset.rules):
        name = rule.label(i)
        if name in names:
            problems.append((("rules", i, "name"), f"name {name!r} is already used by rule {names[name] + 1}"))
        names.setdefault(name, i)
        prefix = rule.key_prefix(i)
        for j in keys.get(prefix, []):
            other = ruleset.rules[j]
            if "*" in rule.types() or "*" in other.types() or rule.types() & other.types():
                where = "key" if rule.key else "name"
                problems.append(
                    (
                        ("rules", i, where),
                        (
                            f"idempotency key {prefix!r} is also rule {j + 1}'s and both can match one event: "
                            "give each rule its own name or key"
                        ),
                    )
                )
                break
        keys.setdefault(prefix, []).append(i)
        groups = rule.pattern.groups if rule.pattern else 0
        group_names = set(rule.pattern.groupindex) if rule.pattern else set()
        for path, template in rule.do.templates().items():
            loc: Loc = ("rules", i, "do", *(int(p) if p.isdigit() else p for p in path.split(".", 1)))
            for used in template_fields(template):
                if used != "match" and not used.startswith("match."):
                    continue
                if rule.pattern is None:
                    problems.append((loc, f"uses {{{{ {used} }}}} but the rule has no text pattern"))
                    continue
                ref = used.partition(".")[2]
                if not ref or ref == "0":
                    continue
                if ref.isdigit() and int(ref) > groups:
                    problems.append((loc, f"uses {{{{ {used} }}}} but the text pattern has {groups} groups"))
                elif not ref.isdigit() and ref not in group_names:
                    known = ", ".join(sorted(group_names)) or "none"
                    problems.append((loc, f"uses {{{{ {used} }}}} but the text pattern has no group {ref!r} ({known})"))
        if not rule.takes_notifications():
            for field in ("reason", "subject", "mark_read"):
                if getattr(rule, field) not in (None, False):
                    problems.append(
                        (
                            ("rules", i, field),
                            f"{field} is about notifications: add Notification to the rule's event (or use *)",
                        )
                    )
        if rule.mark_read and ActionKind(rule.do.kind) not in ACTING_KINDS:
            problems.append(
                (
                    ("rules", i, "mark_read"),
                    (
                        f"mark_read marks the thread read after the action succeeded: do.kind {rule.do.kind}"
                        " does nothing to succeed (use comment, reaction, label or dispatch)"
                    ),
                )
            )
        if isinstance(rule.do, DispatchAction) and rule.actor is None:
            only_notifications = rule.types() == {NOTIFICATION_EVENT}
            problems.append(
                (
                    ("rules", i, "actor"),
                    "a dispatch rule must say who may trigger it: a notification names no actor, so actor: any"
                    " (anyone who can notify you triggers it)"
                    if only_notifications
                    else "a dispatch rule must say who may trigger it: actor: self (recommended) or actor: any",
                )
            )
    return problems


# -- planning ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    """How one rule fared against an event (``rules explain``)."""

    index: int  # 0-based position in the file
    name: str
    matched: bool
    detail: str
    kind: str


@dataclass(frozen=True)
class Explanation:
    """Which rules match an event and what they would do."""

    source: str
    checks: tuple[RuleCheck, ...]
    requests: tuple[ActionRequest, ...]
    note: str = ""

    @property
    def matched(self) -> list[RuleCheck]:
        return [c for c in self.checks if c.matched]


def _who(login: str, user: str) -> str:
    return "self" if login.lower() == user.lower() else "others"


def searched_texts(event: Item) -> tuple[str, ...]:
    """What a rule's ``text`` pattern searches, in order, each cut to ``TEXT_LIMIT``.

    A notification carries no body: its (subject's) title only.
    For an issue or pull request event the issue's or PR's title, then its body: a report often
    says all it says in its title ("App crashes on start", empty body). For a comment or review
    only what that person wrote: the thread's title is not theirs, and a command pattern such as
    ``^/symbiote deploy`` must not fire on every comment of an issue whose title starts with it.
    Payload shapes per https://docs.github.com/rest/using-the-rest-api/github-event-types.
    """
    if isinstance(event, Notification):
        return (event.title[:TEXT_LIMIT],)
    if any(isinstance(event.payload.get(key), dict) for key in ("comment", "review")):
        return (event.text[:TEXT_LIMIT],)
    return (event.title[:TEXT_LIMIT], event.text[:TEXT_LIMIT])


def _search(pattern: re.Pattern[str], event: Item) -> re.Match[str] | None:
    """The first match in ``searched_texts`` (the title before the body)."""
    for text in searched_texts(event):
        match = pattern.search(text)
        if match is not None:
            return match
    return None


def _mismatch(rule: Rule, event: Item, user: str) -> tuple[str | None, re.Match[str] | None]:
    """Why ``rule`` does not match ``event`` (None when it does), and the text match."""
    types = rule.types()
    if "*" not in types and event.type not in types:
        return f"event type is {event.type}, rule wants {', '.join(rule.event)}", None
    if rule.action is not None and event.action not in rule.action:
        return f"action is {event.action or '(none)'}, rule wants {', '.join(rule.action)}", None
    notification = event if isinstance(event, Notification) else None
    if rule.reason is not None:
        if notification is None:
            return f"not a notification: rule wants reason {', '.join(rule.reason)}", None
        if notification.reason not in rule.reason:
            return f"reason is {notification.reason}, rule wants {', '.join(rule.reason)}", None
    if rule.subject is not None:
        if notification is None:
            return f"not a notification: rule wants subject {', '.join(rule.subject)}", None
        if notification.subject_type not in rule.subject:
            return f"subject is {notification.subject_type}, rule wants {', '.join(rule.subject)}", None
    repo = event.repo_name.lower()
    if not any(fnmatch.fnmatchcase(repo, glob.lower()) for glob in rule.repo):
        return f"repository {event.repo_name} matches none of {', '.join(rule.repo)}", None
    if rule.owner != "any" and _who(event.owner, user) != rule.owner:
        return f"repository owner {event.owner} is not {'you' if rule.owner == 'self' else 'someone else'}", None
    visibility = "private" if event.private else "public"
    if rule.visibility not in ("any", visibility):
        return f"repository is {visibility}, rule wants {rule.visibility}", None
    if rule.actor not in (None, "any"):
        login = event.actor_login
        if login is None:
            return f"a notification names no actor: actor: {rule.actor} cannot be told (use reason: instead)", None
        if _who(login, user) != rule.actor:
            return f"actor @{login} is not {'you' if rule.actor == 'self' else 'someone else'}", None
    match: re.Match[str] | None = None
    if rule.pattern is not None:
        match = _search(rule.pattern, event)
        if match is None:
            if notification is not None:
                return "title does not match the pattern", None
            if len(searched_texts(event)) == 1:
                return "text does not match the pattern", None
            return "neither title nor text matches the pattern", None
    return None, match


class RulesPlanner:
    """Plans with a ``RuleSet``: first match wins, unless a rule says ``continue``."""

    def __init__(self, ruleset: RuleSet, *, fork: str | None = None, source: str = "built-in rules") -> None:
        problems = semantic_problems(ruleset)
        if problems:
            loc, message = problems[0]
            raise ValueError(f"{'.'.join(str(p) for p in loc)}: {message}")
        self.ruleset = ruleset
        self.fork = fork
        self.source = source

    def plan(self, event: Item, user: str) -> list[ActionRequest]:
        return list(self.explain(event, user).requests)

    def explain(self, event: Item, user: str) -> Explanation:
        """Every rule's verdict on ``event`` and the requests planned (pure)."""
        if event.is_symbiote_marked:
            return Explanation(self.source, (), (), "Symbiote's own comment (hidden marker): never acted on")
        checks: list[RuleCheck] = []
        requests: list[ActionRequest] = []
        stopped = False
        for index, rule in enumerate(self.ruleset.rules):
            name = rule.label(index)
            if stopped:
                checks.append(RuleCheck(index, name, False, "not evaluated: an earlier rule matched", rule.do.kind))
                continue
            why, match = _mismatch(rule, event, user)
            if why is not None:
                checks.append(RuleCheck(index, name, False, why, rule.do.kind))
                continue
            request, detail = self._build(rule, index, event, user, match)
            if request is not None:
                requests.append(request)
            checks.append(RuleCheck(index, name, True, detail, rule.do.kind))
            stopped = not rule.continue_
        return Explanation(self.source, tuple(checks), tuple(requests))

    def _build(
        self, rule: Rule, index: int, event: Item, user: str, match: re.Match[str] | None
    ) -> tuple[ActionRequest | None, str]:
        action = rule.do
        if isinstance(action, NoneAction):
            return None, "matched: does nothing"
        kind = ActionKind(action.kind)
        values = event_values(event, user, self.fork, match)
        number = event.issue_number
        sensitive = kind in SENSITIVE_KINDS
        fields: dict[str, Any] = {
            "kind": kind,
            "repo": event.repo_name,
            "idempotency_key": f"{rule.key_prefix(index)}-{event.id}",
            "event_id": event.id,
            "private": event.private,
            "auth": AuthMode.USER if (event.private or sensitive) else AuthMode.APP,
            "reason": rule.description or f"rule {rule.label(index)}",
            "issue_number": number,
        }
        if rule.mark_read and isinstance(event, Notification):
            # Marked read by the executor once the action succeeded (PATCH /notifications/threads/{id}).
            fields["thread_id"] = event.thread_id
        what = "notification" if isinstance(event, Notification) else "event"
        if isinstance(action, CommentAction):
            if number is None:
                return None, f"matched, but the {what} has no issue or pull request to comment on"
            fields["body"] = render_template(action.body, values, clean_for_comment)[:MAX_BODY]
        elif isinstance(action, ReactionAction):
            comment_id = _comment_id(event)
            if comment_id is not None:
                fields["comment_id"] = comment_id
                fields["issue_number"] = None
            elif number is None:
                return None, f"matched, but the {what} has nothing to react to"
            fields["reaction"] = action.reaction
        elif isinstance(action, LabelAction):
            if number is None:
                return None, f"matched, but the {what} has no issue or pull request to label"
            labels = [render_template(t, values, clean_for_input).strip()[:MAX_LABEL].strip() for t in action.labels]
            fields["labels"] = list(dict.fromkeys(label for label in labels if label))
            if not fields["labels"]:
                return None, "matched, but every label rendered empty"
        elif isinstance(action, DispatchAction):
            target = render_template(action.repo, values, clean_for_input).strip() if action.repo else self.fork
            if not target:
                return None, "matched, but no target repo: set SYMBIOTE_REPO (the fork) or do.repo"
            try:
                fields["repo"] = valid_repo(target)
            except ValueError:
                return None, "matched, but the target repo rendered to something that is not owner/name"
            fields["workflow"] = action.workflow
            fields["ref"] = action.ref or "main"
            fields["inputs"] = {k: render_template(v, values, clean_for_input) for k, v in action.inputs.items()}
            fields["issue_number"] = None
        try:
            request = ActionRequest(**fields)
            request.check_complete()
        except (ValidationError, ValueError) as exc:
            return None, f"matched, but the request is invalid: {_first_error(exc)}"
        return request, "matched"


def _comment_id(event: Item) -> int | None:
    # Reactions on pull request review comments live under another endpoint; react to the PR instead.
    # A notification reacts on its issue or PR (its latest comment is not what was asked of the user).
    if not isinstance(event, Event) or event.type != "IssueCommentEvent":
        return None
    comment = event.payload.get("comment")
    value = comment.get("id") if isinstance(comment, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_input=False, include_url=False)[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid')}"
    return str(exc)


# -- the built-in rules ------------------------------------------------------------------------------


def _ack(name: str, event: str, action: str, what: str) -> dict[str, Any]:
    return {
        "name": name,
        "key": "ack",
        "description": f"acknowledge {what}",
        "event": event,
        "action": action,
        "do": {
            "kind": "comment",
            "body": "Symbiote noticed this " + what + " by @{{ actor }} and is on it on behalf of @{{ user }}.",
        },
    }


BUILTIN_RULES = RuleSet.model_validate(
    {
        "version": 1,
        "rules": [
            _ack("ack-issue", "IssuesEvent", "opened", "issue"),
            _ack("ack-pull-request", "PullRequestEvent", "opened", "pull request"),
            _ack("ack-comment", "IssueCommentEvent", "created", "comment"),
            _ack("ack-review-comment", "PullRequestReviewCommentEvent", "created", "review comment"),
        ],
    }
)


def builtin_planner(fork: str | None = None) -> RulesPlanner:
    """The built-in rules: the seed's acknowledgment comments."""
    return RulesPlanner(BUILTIN_RULES, fork=fork, source="built-in rules")
