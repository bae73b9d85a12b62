"""Reading a rules file (``.github/symbiote.yml``) and choosing the planner.

The YAML is composed to nodes first, so every problem can name its line: a
pydantic error location (``rules.2.do.body``) is walked down the node tree to
the deepest key that exists. Anchors and aliases are refused (no billion-laughs
expansion), duplicate keys are errors (YAML would silently keep the last one),
and files are bounded in size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml import MappingNode, ScalarNode, SequenceNode

from symbiote_cli.core.describe import describe
from symbiote_cli.core.errors import ConfigError, InputError
from symbiote_cli.core.models import ActionKind, Item, Notification, RouteDecision, valid_repo
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import (
    BUILTIN_RULES,
    Explanation,
    Loc,
    RuleSet,
    RulesPlanner,
    is_sensitive,
    semantic_problems,
    strip_controls,
    summarize,
)

DEFAULT_RULES_PATH = Path(".github") / "symbiote.yml"
MAX_RULES_BYTES = 256 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rules file: ``file:line: field: message``."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class RulesFileError(ConfigError):
    """A rules file that does not validate; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        more = f" (+{len(problems) - 1} more; run `symbiote rules check`)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")
        self.problems = problems


def _safe(text: str, limit: int) -> str:
    """Untrusted text for one line of output: no control characters, bounded."""
    return strip_controls(text)[:limit]


def _dotted(parts: list[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def locate(root: yaml.Node, loc: Loc) -> tuple[int, str]:
    """The line (1-based) and a readable field path for a pydantic error location."""

    node: yaml.Node = root
    line = root.start_mark.line + 1
    parts: list[str | int] = []
    for position, part in enumerate(loc):
        if isinstance(node, MappingNode) and isinstance(part, str):
            found = next(
                ((k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == part),
                None,
            )
            if found is not None:
                key, node = found
                line = key.start_mark.line + 1
                parts.append(part)
                continue
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
            parts.append(part)
            continue
        # A discriminator tag or a missing field: name it only when it is the last part.
        if position == len(loc) - 1:
            parts.append(part)
    return line, _dotted(parts)


def _structure_problems(root: yaml.Node, source: str) -> tuple[list[Problem], bool]:
    """Aliases, merge keys and duplicate keys, which the parsed data would hide; and whether
    any is fatal (aliases could expand exponentially: nothing more is read)."""

    problems: list[Problem] = []
    seen: set[int] = set()
    fatal = False

    def walk(node: yaml.Node, path: list[str | int], line: int) -> None:
        nonlocal fatal
        if id(node) in seen:
            fatal = True
            problems.append(Problem(source, line, _dotted(path), "anchors and aliases (&, *) are not supported"))
            return
        seen.add(id(node))
        if isinstance(node, MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                name = key.value if isinstance(key, ScalarNode) else "?"
                key_line = key.start_mark.line + 1
                if name == "<<":
                    fatal = True
                    problems.append(Problem(source, key_line, _dotted(path), "merge keys (<<) are not supported"))
                elif name in keys:
                    problems.append(Problem(source, key_line, _dotted([*path, name]), "duplicate key"))
                keys.add(name)
                walk(value, [*path, name], key_line)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, [*path, index], item.start_mark.line + 1)

    walk(root, [], root.start_mark.line + 1)
    return problems, fatal


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _without_tags(loc: Loc) -> Loc:
    """Drop pydantic's discriminator tag (``do.<kind>.field`` -> ``do.field``): it is not in the file."""
    kinds = {kind.value for kind in ActionKind}
    return tuple(
        part for i, part in enumerate(loc) if not (i > 0 and loc[i - 1] == "do" and part in kinds and i < len(loc) - 1)
    )


def _message(err: Any) -> str:
    message = str(err.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    return message


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Validate a rules file's text; raises RulesFileError listing ``file:line: field: problem``."""
    if len(text.encode("utf-8", "replace")) > MAX_RULES_BYTES:
        raise RulesFileError([Problem(source, None, "", f"larger than {MAX_RULES_BYTES // 1024} KiB")])
    loader = yaml.SafeLoader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            what = exc.problem or exc.context or "invalid YAML"
            raise RulesFileError([Problem(source, line, "", f"YAML: {what}")]) from None
        except yaml.YAMLError as exc:
            raise RulesFileError([Problem(source, None, "", f"YAML: {exc}")]) from None
        if root is None:
            raise RulesFileError([Problem(source, 1, "", "the file is empty: it needs `rules:` (see examples/)")])
        structure, fatal = _structure_problems(root, source)
        if fatal:
            raise RulesFileError(structure)
        try:
            data = loader.construct_document(root)
        except yaml.YAMLError as exc:
            raise RulesFileError([Problem(source, root.start_mark.line + 1, "", f"YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        shape = Problem(source, 1, "", "the file must be a mapping with `version: 1` and `rules:`")
        raise RulesFileError([*structure, shape])
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        found = []
        for err in exc.errors(include_input=False, include_url=False):
            line, field = locate(root, _without_tags(tuple(err.get("loc", ()))))
            found.append(Problem(source, line, field, _message(err)))
        raise RulesFileError(_by_line([*structure, *found])) from None
    semantic = semantic_problems(ruleset)
    if semantic:
        located = []
        for loc, message in semantic:
            line, field = locate(root, loc)
            located.append(Problem(source, line, field, message))
        raise RulesFileError(_by_line([*structure, *located]))
    if structure:
        raise RulesFileError(structure)
    return ruleset


def load_rules_file(path: Path) -> RuleSet:
    """Read and validate ``path``."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_RULES_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    if len(raw) > MAX_RULES_BYTES:
        raise RulesFileError([Problem(str(path), None, "", f"larger than {MAX_RULES_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RulesFileError([Problem(str(path), None, "", "not UTF-8 text")]) from None
    return parse_rules(text, str(path))


def rules_path(config: Path | None, storage_repo: Path, explicit: Path | None = None) -> Path | None:
    """The rules file in use: ``explicit``, else ``config`` (``SYMBIOTE_CONFIG``), else ``.github/symbiote.yml``
    in the fork checkout ``storage_repo`` when present, else None (built-in rules)."""
    chosen = explicit or config
    if chosen is not None:
        if not chosen.is_file():
            source = "" if explicit else " (SYMBIOTE_CONFIG)"
            raise ConfigError(f"rules file {chosen}{source} does not exist")
        return chosen
    candidate = storage_repo / DEFAULT_RULES_PATH
    return candidate if candidate.is_file() else None


def fork_repo(repo: str | None, env: Mapping[str, str]) -> str | None:
    """The fork running Symbiote: ``repo`` (``SYMBIOTE_REPO``), else ``GITHUB_REPOSITORY`` (in Actions)."""
    name = repo or env.get("GITHUB_REPOSITORY") or None
    if name is None:
        return None
    try:
        return valid_repo(name)
    except ValueError:
        raise ConfigError(f"SYMBIOTE_REPO is not owner/name: {name!r}") from None


def planner_for(path: Path | None, fork: str | None) -> RulesPlanner:
    """The rules file at ``path`` if there is one, else the built-in rules."""
    if path is None:
        return RulesPlanner(BUILTIN_RULES, fork=fork, source="built-in rules")
    return RulesPlanner(load_rules_file(path), fork=fork, source=str(path))


# -- rules explain ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Explained:
    """One event or notification explained: the rules' verdicts, the plan and the route (``rules explain``)."""

    event: Item
    user: str
    explanation: Explanation
    decision: RouteDecision

    def as_json(self) -> dict[str, Any]:
        notification = self.event if isinstance(self.event, Notification) else None
        return {
            "event_id": self.event.id,
            "type": self.event.type,
            "action": self.event.action,
            "repo": self.event.repo_name,
            "source": self.event.source.value,
            **(
                {
                    "reason": notification.reason,
                    "subject": notification.subject_type,
                    "number": notification.issue_number,
                    "thread_id": notification.thread_id,
                }
                if notification is not None
                else {}
            ),
            "user": self.user,
            "rules": self.explanation.source,
            "note": self.explanation.note or None,
            "checks": [
                {"rule": c.index + 1, "name": c.name, "kind": c.kind, "matched": c.matched, "detail": c.detail}
                for c in self.explanation.checks
            ],
            "plan": [
                {**r.model_dump(mode="json", exclude_defaults=True), "sensitive": is_sensitive(r)}
                for r in self.explanation.requests
            ],
            "route": self.decision.model_dump(mode="json"),
        }

    def head(self) -> str:
        """The first line: what the item is, where, and for whom."""
        event = self.event
        where = f"{event.repo_name}#{event.issue_number}" if event.issue_number else event.repo_name
        visibility = "private" if event.private else "public"
        for_whom = f"for @{_safe(self.user, 50)}"
        if isinstance(event, Notification):
            # No actor (a notification names none) and no title: explain prints no untrusted text it need not.
            what = f"notification {event.id} {event.reason} on {event.subject_type} {where} ({visibility})"
            return f"{what}, {for_whom}"
        action = f" {_safe(event.action, 50)}" if event.action else ""
        head = f"event {event.id} {_safe(event.type, 100)}{action} in {where} ({visibility})"
        return f"{head} by @{event.actor.login}, {for_whom}"

    def lines(self) -> list[str]:
        out = [self.head(), f"rules: {self.explanation.source}"]
        if self.explanation.note:
            out.append(f"  {self.explanation.note}")
        for check in self.explanation.checks:
            mark = "match" if check.matched else "skip "
            out.append(f"  {mark} {check.index + 1} {check.name} ({check.kind}): {_safe(check.detail, 200)}")
        if not self.explanation.requests:
            out.append("plan: nothing to do")
        else:
            out.append("plan:")
            for request in self.explanation.requests:
                extra = [f"key {request.idempotency_key}", f"auth {request.auth.value}"]
                if request.comment_id is not None:
                    extra.insert(0, f"comment {request.comment_id}")
                if request.ref is not None:
                    extra.insert(0, f"ref {request.ref}")
                if request.thread_id is not None:
                    extra.append(f"thread {request.thread_id}")
                if is_sensitive(request):
                    extra.append("sensitive: the user's token")
                out.append(f"  {describe(request)} ({', '.join(extra)})")
                if request.body is not None:
                    out.append(f"    body: {json.dumps(request.body, ensure_ascii=False)[:300]}")
                if request.inputs:
                    shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in request.inputs.items())
                    out.append(f"    inputs: {shown[:300]}")
        out.append(f"route: {self.decision.route.value} ({_safe(self.decision.reason, 200)})")
        return out


def whose(item: Item, user: str | None, position: int = 0) -> str:
    """Whose feed (or notifications) ``item`` is from: ``user``, else an event's actor.

    A notification names no actor: without ``user`` there is no telling whose it is (InputError).
    """
    if user:
        return user
    if item.actor_login is None:
        raise InputError(
            f"item {position}: a notification names no actor: say whose notifications these are with --user"
            " (or SYMBIOTE_USER)"
        )
    return item.actor_login


def explain_events(
    planner: RulesPlanner,
    events: Sequence[Item],
    *,
    user: str | None = None,
    kernel_repos: Sequence[str] = (),
    kernel_owners: Sequence[str] = (),
) -> list[Explained]:
    """Plan (never act) each event or notification with ``planner``, and route it as ``poll`` would."""
    explained = []
    for position, event in enumerate(events):
        who = whose(event, user, position)
        explanation = planner.explain(event, who)
        planned = list(explanation.requests)
        ctx = RoutingContext.build(
            who,
            kernel_repos=kernel_repos,
            kernel_owners=kernel_owners,
            planned={event.id: (summarize(planned), any(is_sensitive(r) for r in planned))},
        )
        explained.append(Explained(event, who, explanation, route_event(event, ctx)))
    return explained
