"""Seeing what ``poll`` does: a live terminal view, and progress bars for long work.

``make_observer`` picks the view: in a terminal, ``LiveObserver`` (a ``rich.live``
panel with the last and next poll, events by route, notifications by reason, recent actions with links,
the rate limit left and storage commits); otherwise the plain ``LineObserver``
of ``output.py`` (one line per event and action, or JSON lines with ``--json``).

Everything shown is our own words or cleaned identifiers: event text never
reaches the terminal, and rich markup in repository names or details is escaped.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from symbiote_cli.cli.output import LineObserver
from symbiote_cli.core.models import ActionRequest, ActionResult, ActionStatus, Item, Notification, RouteDecision
from symbiote_cli.core.privacy import repo_key
from symbiote_cli.core.redaction import REDACT

if TYPE_CHECKING:
    from symbiote_cli.flows.poll import CycleReport, Observer
    from symbiote_cli.github.client import GitHubClient, RateInfo

T = TypeVar("T")

RECENT_ACTIONS = 8
RECENT_WARNINGS = 3
_STATUS_STYLE = {
    ActionStatus.DONE: "green",
    ActionStatus.ALREADY_DONE: "cyan",
    ActionStatus.PLANNED: "blue",
    ActionStatus.FAILED: "bold red",
    ActionStatus.DEFERRED: "yellow",
    ActionStatus.SKIPPED: "dim",
}
_ROUTE_ORDER = ("app", "user", "kernel", "ignore")


def _clean(text: str, limit: int = 120) -> str:
    """One line of our own text or an identifier, secrets masked, bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in REDACT(text))
    return cleaned[:limit]


def _hms(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "never"
    seconds = max(0, round(now - ts))
    if seconds < 60:
        return f"{seconds}s ago"
    return f"{seconds // 60}m{seconds % 60:02d}s ago"


def _until(now: float, ts: float | None) -> str:
    if ts is None:
        return "-"
    seconds = max(0, round(ts - now))
    if seconds < 60:
        return f"in {seconds}s"
    return f"in {seconds // 60}m{seconds % 60:02d}s"


@dataclass(frozen=True)
class ActionLine:
    at: float
    kind: str
    where: str
    status: ActionStatus
    detail: str
    url: str | None


class LiveObserver:
    """A ``poller.Observer`` drawing a live panel (``rich.live``) in the terminal.

    ``render()`` builds the panel from the state gathered so far (tests print it to a
    recording Console); ``start()``/``close()`` run the live display, which also starts
    by itself at the first cycle. Use it as a context manager to be sure it closes.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        client: GitHubClient | None = None,
        reveal_private: bool = True,
        interval: float = 60.0,
        now: Callable[[], float] = time.time,
        live: bool = True,
        names: bytes | None = None,
    ) -> None:
        self.console = console or Console()
        self.names = names
        self.client = client
        self.reveal_private = reveal_private
        self.interval = interval
        self.now = now
        self.use_live = live
        self.cycles = 0
        self.polling = False
        self.last_poll: float | None = None
        self.next_poll: float | None = None
        self.last_status = "starting"
        self.routes: Counter[str] = Counter()
        """Events of the user's feed by route."""
        self.reasons: Counter[str] = Counter()
        """Notifications by their reason (review_requested, mention, ...): never their titles."""
        self.actions: deque[ActionLine] = deque(maxlen=RECENT_ACTIONS)
        self.action_counts: Counter[str] = Counter()
        self.warnings: deque[str] = deque(maxlen=RECENT_WARNINGS)
        self.commits = 0
        self.last_commit: str | None = None
        self._live: Live | None = None
        self._lock = threading.Lock()

    # -- wiring ---------------------------------------------------------------------

    def attach_client(self, client: GitHubClient) -> None:
        """Show this client's rate limit (``client.rate``) from now on."""
        self.client = client

    def start(self) -> None:
        if self._live is not None or not self.use_live:
            return
        self._live = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=2,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.start()

    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.refresh()
            live.stop()

    def __enter__(self) -> LiveObserver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    # -- Observer ---------------------------------------------------------------------

    def cycle_started(self, number: int) -> None:
        self.start()
        with self._lock:
            self.cycles = number
            self.polling = True
        self._refresh()

    def cycle_finished(self, report: CycleReport) -> None:
        now = self.now()
        with self._lock:
            self.polling = False
            self.last_poll = now
            self.last_status = report.status
            wait = max(self.interval, float(report.poll_interval or 0))
            self.next_poll = max(now + wait, report.wait_until or 0.0)
            if report.commit:
                self.commits += 1
                self.last_commit = report.commit
        self._refresh()

    def decided(self, event: Item, decision: RouteDecision) -> None:
        with self._lock:
            if isinstance(event, Notification):
                self.reasons[event.reason] += 1
            else:
                self.routes[decision.route.value] += 1
        self._refresh()

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None:
        hidden = request.private and not self.reveal_private
        repo = repo_key(request.repo, self.names) if hidden else request.repo
        where = f"{repo}#{request.issue_number}" if request.issue_number else repo
        line = ActionLine(
            at=result.at or self.now(),
            kind=request.kind.value,
            where=_clean(where, 80),
            status=result.status,
            detail="(private repo)" if hidden else _clean(result.detail, 80),
            url=None if hidden or not result.url else _clean(result.url, 200),
        )
        with self._lock:
            self.actions.appendleft(line)
            self.action_counts[result.status.value] += 1
        self._refresh()

    def warn(self, message: str) -> None:
        with self._lock:
            self.warnings.appendleft(_clean(message, 200))
        self._refresh()

    # -- drawing ------------------------------------------------------------------------

    def _rate(self) -> str:
        rate: RateInfo | None = self.client.rate if self.client is not None else None
        if rate is None or rate.remaining is None:
            return "-"
        text = f"{rate.remaining}/{rate.limit}" if rate.limit else str(rate.remaining)
        if rate.reset:
            text += f" (resets {_hms(rate.reset)})"
        return text

    def render(self) -> RenderableType:
        """The panel as it stands now."""
        now = self.now()
        with self._lock:
            summary = Table.grid(padding=(0, 2))
            summary.add_column(style="bold")
            summary.add_column()
            summary.add_column(style="bold")
            summary.add_column()
            state = "polling..." if self.polling else self.last_status
            summary.add_row(
                "last poll",
                f"{_hms(self.last_poll)} ({_ago(now, self.last_poll)})",
                "next poll",
                "now" if self.polling else f"{_hms(self.next_poll)} ({_until(now, self.next_poll)})",
            )
            summary.add_row("cycle", f"{self.cycles} ({escape(state)})", "rate limit left", escape(self._rate()))
            routes = ", ".join(f"{r} {self.routes[r]}" for r in _ROUTE_ORDER if self.routes.get(r)) or "none yet"
            commit = f"{self.commits}" + (f" (last {self.last_commit[:10]})" if self.last_commit else "")
            summary.add_row("events", escape(routes), "storage commits", escape(commit))
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.action_counts.items())) or "none yet"
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            summary.add_row("actions", escape(counts), "notifications" if reasons else "", escape(reasons))

            parts: list[RenderableType] = [summary]
            if self.actions:
                table = Table(box=None, pad_edge=False, show_edge=False, expand=False, title_justify="left")
                table.add_column("time", style="dim", no_wrap=True)
                table.add_column("action", no_wrap=True)
                table.add_column("where", overflow="fold")
                table.add_column("status", no_wrap=True)
                table.add_column("link / detail", overflow="fold")
                for line in self.actions:
                    style = _STATUS_STYLE.get(line.status, "")
                    link = Text(line.url, style=f"link {line.url}") if line.url else Text(line.detail)
                    table.add_row(
                        _hms(line.at), line.kind, Text(line.where), Text(line.status.value, style=style), link
                    )
                parts.append(Text("recent actions", style="bold"))
                parts.append(table)
            for message in self.warnings:
                parts.append(Text(f"warning: {message}", style="yellow"))
        return Panel(Group(*parts), title="symbiote poll", title_align="left", border_style="blue")


def make_observer(
    json_out: bool,
    reveal_private: bool,
    client: GitHubClient | None = None,
    console: Console | None = None,
    *,
    interval: float = 60.0,
    names: bytes | None = None,
) -> Observer:
    """The live view when stdout is a terminal (and not ``--json``), else plain or JSON lines.

    A ``LiveObserver`` should be closed when polling ends (``close()`` or ``with``);
    ``close_observer`` does that for any observer.
    """
    target = console or Console()
    if json_out or not target.is_terminal:
        return LineObserver(reveal_private=reveal_private, as_json=json_out, names=names)
    return LiveObserver(target, client=client, reveal_private=reveal_private, interval=interval, names=names)


def close_observer(observer: object) -> None:
    """Stop a live view (no-op for observers without ``close``)."""
    close = getattr(observer, "close", None)
    if callable(close):
        close()


# -- progress ------------------------------------------------------------------------------------


class ProgressBar:
    """Advance with ``advance(n)``; draws a rich progress bar in a terminal, nothing otherwise."""

    def __init__(self, description: str, total: int | None, console: Console | None = None) -> None:
        self.description = description
        self.total = total
        self.completed = 0
        self.console = console or Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> ProgressBar:
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(_clean(self.description, 60), total=self.total)
        return self

    def advance(self, steps: int = 1) -> None:
        self.completed += steps
        if self._progress is not None:
            self._progress.update(self._task, advance=steps)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()
            self._progress = None


@contextmanager
def progress(description: str, total: int | None, console: Console | None = None) -> Iterator[ProgressBar]:
    """``with progress("backfill", total=300) as bar: ... bar.advance()`` (backfills, large gc)."""
    with ProgressBar(description, total, console) as bar:
        yield bar


def track(
    items: Iterable[T], description: str, total: int | None = None, console: Console | None = None
) -> Iterator[T]:
    """Iterate ``items`` with a progress bar (``total`` defaults to ``len(items)`` when known)."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with ProgressBar(description, total, console) as bar:
        for item in items:
            yield item
            bar.advance()
