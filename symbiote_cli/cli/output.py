"""Everything Symbiote prints: one red error line, log lines, JSON lines.

Secrets are masked in every line that leaves the process (``core.redaction.REDACT``), as a
second line of defence: messages are built from our own words and never from
tokens in the first place. Private repos are named only where the reader is
the user (their terminal), never in a public Actions log.

A notification (what others ask of the user) is shown as ``notification <id> <reason> <repo>``:
its reason (``review_requested``, ``mention``...), never its subject's title, which is someone
else's text and, in a private repository, private (issue 15).
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.markup import escape

from symbiote_cli.cli import gha
from symbiote_cli.core.models import ActionRequest, ActionResult, ActionStatus, Item, Notification, RouteDecision
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.core.redaction import REDACT

if TYPE_CHECKING:
    from symbiote_cli.flows.poll import CycleReport

_NOISY = ("github", "urllib3", "git")


class _RedactingFilter(logging.Filter):
    def __init__(self, quiet_libraries: bool) -> None:
        super().__init__()
        self.quiet = quiet_libraries

    def filter(self, record: logging.LogRecord) -> bool:
        # PyGithub sets its own logger to INFO when imported; its retry chatter is
        # only wanted with --debug.
        if self.quiet and record.levelno < logging.ERROR and record.name.startswith(_NOISY):
            return False
        message = record.getMessage()
        record.msg = REDACT(message)
        record.args = None
        if record.exc_info:
            # Tracebacks are formatted later by the handler: format and mask them now.
            record.exc_text = REDACT(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(level: str) -> None:
    """Log to stderr, secrets masked; DEBUG shows tracebacks and PyGithub's chatter."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    handler = logging.StreamHandler(sys.stderr)
    numeric = getattr(logging, level.upper(), logging.INFO)
    handler.addFilter(_RedactingFilter(quiet_libraries=numeric > logging.DEBUG))
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    logging.getLogger("symbiote").setLevel(numeric)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """The one red line every failure ends with."""
    err_console().print(f"[bold red]error:[/] {escape(REDACT(message))}")


def warn_line(message: str) -> None:
    err_console().print(f"[yellow]warning:[/] {escape(REDACT(message))}")


def emit(line: str, stream: TextIO | None = None) -> None:
    """Print one line of command output (stdout), secrets masked."""
    target = stream or sys.stdout
    target.write(REDACT(line) + "\n")
    target.flush()


def emit_json(obj: Any, stream: TextIO | None = None) -> None:
    emit(json.dumps(obj, sort_keys=True, ensure_ascii=False), stream)


def _safe(text: str, limit: int = 120) -> str:
    """Untrusted text for a log line: one line, no control characters, bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned[:limit]


def item_line(event: Item, repo: str, route: str, reason: str) -> str:
    """One log line for a routed item: an event by its type, a notification by its reason (never its title)."""
    if isinstance(event, Notification):
        return f"notification {event.id} {event.reason} {repo} -> {route}: {reason}"
    return f"event {event.id} {event.type} {repo} -> {route}: {reason}"


def cycle_title(report: CycleReport) -> str:
    """``Cycle 3: 2 new events, 1 new notification``: what the cycle found, by source."""
    notifications = report.notifications
    events = max(0, report.new - notifications)
    parts = [f"{events} new events"] if events or not notifications else []
    if notifications:
        parts.append(f"{notifications} new notification{'s' if notifications != 1 else ''}")
    return f"Cycle {report.number}: {', '.join(parts)}"


class LineObserver:
    """One plain line per event and per action (non-terminal output)."""

    def __init__(
        self,
        *,
        reveal_private: bool = True,
        as_json: bool = False,
        stream: TextIO | None = None,
        names: bytes | None = None,
    ) -> None:
        self.reveal_private = reveal_private
        self.as_json = as_json
        self.stream = stream
        self.names = names
        """The storage key's naming key (``Sealer.names``): a hidden private repo is named as on the branch,
        by a hash nobody can check a guess against (None without a key: the unkeyed hash)."""

    def _repo(self, repo: str, private: bool) -> str:
        if private and not self.reveal_private:
            return repo_key(repo, self.names)
        return repo

    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        if self.as_json:
            emit_json(
                {
                    "kind": "cycle",
                    "cycle": report.number,
                    "status": report.status,
                    "new": report.new,
                    "notifications": report.notifications,
                    "handled": report.handled,
                    "deferred": report.deferred,
                    "commit": report.commit,
                },
                self.stream,
            )

    def decided(self, event: Item, decision: RouteDecision) -> None:
        repo = self._repo(event.repo_name, event.private)
        reason = decision.reason if (self.reveal_private or not event.private) else "(private repo)"
        if self.as_json:
            record = {"kind": "event", **decision.model_dump(mode="json"), "repo": repo, "reason": reason}
            if isinstance(event, Notification):
                # "reason" stays the routing reason, as for events; the notification's own is "notification".
                record.update(kind="notification", notification=event.reason, subject_type=event.subject_type)
            emit_json(record, self.stream)
        else:
            emit(item_line(event, repo, decision.route.value, _safe(reason)), self.stream)

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None:
        repo = self._repo(request.repo, request.private)
        hidden = request.private and not self.reveal_private
        url = None if hidden else result.url
        detail = "(private repo)" if hidden else _safe(result.detail)
        if self.as_json:
            emit_json(
                {
                    "kind": "action",
                    "event_id": event.id if event else None,
                    "action": request.kind.value,
                    "repo": repo,
                    "status": result.status.value,
                    "detail": detail,
                    "url": url,
                },
                self.stream,
            )
            return
        where = f"{repo}#{request.issue_number}" if request.issue_number else repo
        tail = f" {url}" if url else ""
        emit(f"action {request.kind.value} {where}: {result.status.value} ({detail}){tail}", self.stream)

    def warn(self, message: str) -> None:
        if self.as_json:
            emit_json({"kind": "warning", "message": message}, self.stream)
        else:
            warn_line(message)


class ActionsObserver(LineObserver):
    """Inside GitHub Actions: one ``::group::`` per cycle that found events or notifications, annotations
    for gaps, failed actions, rate-limit waits and a refused source, private repos named only by their hash, and
    untrusted text neutralised so it can never act as a workflow command."""

    def __init__(self, stream: TextIO | None = None, *, names: bytes | None = None) -> None:
        super().__init__(reveal_private=False, as_json=False, stream=stream, names=names)
        self._lines: list[str] = []

    def cycle_started(self, number: int) -> None:
        self._lines = []

    def decided(self, event: Item, decision: RouteDecision) -> None:
        repo = self._repo(event.repo_name, event.private)
        reason = "(private repo)" if event.private else _safe(decision.reason)
        self._lines.append(item_line(event, repo, decision.route.value, reason))

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None:
        repo = self._repo(request.repo, request.private)
        where = f"{repo}#{request.issue_number}" if request.issue_number else repo
        detail = "(private repo)" if request.private else _safe(result.detail)
        url = "" if request.private or not result.url else f" {result.url}"
        self._lines.append(f"action {request.kind.value} {where}: {result.status.value} ({detail}){url}")
        if result.status is ActionStatus.FAILED:
            message = REDACT(f"{request.kind.value} on {where} failed: {detail}")
            gha.warning(message, title="Action failed", stream=self.stream)

    def cycle_finished(self, report: CycleReport) -> None:
        if report.new:
            with gha.group(cycle_title(report), stream=self.stream):
                for line in self._lines:
                    gha.log(REDACT(line), stream=self.stream)
        else:
            for line in self._lines:
                gha.log(REDACT(line), stream=self.stream)
        self._lines = []

    def warn(self, message: str) -> None:
        title = "Gap in the event feed" if message.startswith("gap:") else None
        if message.startswith("rate limited"):
            title = "Rate limited"
        if "refused to list notifications" in message:
            title = "Notifications turned off"
        gha.warning(REDACT(message), title=title, stream=self.stream)
