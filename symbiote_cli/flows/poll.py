"""The poll loop: poll → route → act → store, one cycle at a time.

All I/O is injected (GitHub client, storage, clock, executor, planner) so the
loop runs under test with a fake clock. Guarantees (docs/reliability.md):

* events are handled oldest first and the cursor moves past an event only once
  it is fully handled (acted on, or recorded as failed);
* state is committed once per cycle, and not at all when nothing changed;
* a crash before the commit replays the cycle, and the executor's marker check
  turns replayed comments into ``already_done``;
* SIGINT/SIGTERM set ``stop``: the event in hand is finished, state flushed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from symbiote_cli.core import sessions
from symbiote_cli.core.clock import iso
from symbiote_cli.core.errors import AuthError, GitHubError, RateLimitedError, StorageError, SupersededError
from symbiote_cli.core.models import (
    ActionRequest,
    ActionResult,
    ActionStatus,
    AuthMode,
    Cursor,
    Event,
    Item,
    Notification,
    NotificationCursor,
    ProcessedEvent,
    Route,
    RouteDecision,
    Session,
    Source,
)
from symbiote_cli.core.privacy import protect_record
from symbiote_cli.core.routing import RoutingContext, route_event
from symbiote_cli.core.rules import KINDS, is_sensitive, summarize
from symbiote_cli.flows import inbox, notifications
from symbiote_cli.storage import layout, transactions
from symbiote_cli.storage.branch import HistoryRewrittenError

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.core.pacing import WriteBudget
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.core.rules import Planner
    from symbiote_cli.flows.execute import Executor
    from symbiote_cli.github.protocol import GitHubAPI
    from symbiote_cli.github.registry import KernelRegistry
    from symbiote_cli.storage.branch import Storage

log = logging.getLogger("symbiote.poll")

PER_PAGE = 100


class PositionUnusableError(StorageError):
    """The stored position cannot be trusted (cursor ahead of the feed, history rewritten) and
    ``--rebaseline`` was not given: stop rather than start over silently and skip events."""


class Observer(Protocol):
    """Where the loop reports what it does (terminal view, log lines, JSON, Actions)."""

    def cycle_started(self, number: int) -> None: ...

    def cycle_finished(self, report: CycleReport) -> None: ...

    def decided(self, event: Item, decision: RouteDecision) -> None: ...

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None: ...

    def warn(self, message: str) -> None: ...


class NullObserver:
    def cycle_started(self, number: int) -> None:
        return None

    def cycle_finished(self, report: CycleReport) -> None:
        return None

    def decided(self, event: Item, decision: RouteDecision) -> None:
        return None

    def acted(self, event: Item | None, request: ActionRequest, result: ActionResult) -> None:
        return None

    def warn(self, message: str) -> None:
        log.warning("%s", message)


class CycleStatus(StrEnum):
    """What one cycle found; printed and sent as JSON by its value."""

    IDLE = "idle"
    EVENTS = "events"
    BASELINE = "baseline"
    BACKLOG = "backlog"
    RATE_LIMITED = "rate-limited"
    ERROR = "error"


class ExitReason(StrEnum):
    """Why a run ended; printed, summarised and reported by its value."""

    FINISHED = "finished"
    ONE_CYCLE = "one cycle"
    DEADLINE = "deadline reached"
    SIGNAL = "stopped by signal"
    SUPERSEDED = "superseded by a newer session"
    TOKEN_REJECTED = "token rejected"
    CRASHED = "crashed"


@dataclass
class CycleReport:
    number: int
    status: CycleStatus
    fetched: int = 0
    new: int = 0
    handled: int = 0
    deferred: int = 0
    gap: bool = False
    notifications: int = 0
    """New notifications this cycle (they count in ``new``, ``handled`` and ``deferred`` too)."""
    commit: str | None = None
    poll_interval: int | None = None
    wait_until: float | None = None


@dataclass
class RunStats:
    """What a run did; feeds the job summary and ``GITHUB_OUTPUT``."""

    session_id: str | None = None
    user: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    cycles: int = 0
    events_by_route: Counter[str] = field(default_factory=Counter)
    events_by_type: Counter[str] = field(default_factory=Counter)
    notifications_by_reason: Counter[str] = field(default_factory=Counter)
    """Notifications handled, by their reason (review_requested, mention, ...)."""
    sources: tuple[str, ...] = ("events",)
    """The sources polled (``Source`` values); notifications leave it when GitHub refuses them."""
    source_warnings: list[str] = field(default_factory=list)
    """Why a source was turned off during the run (a fine-grained token cannot read notifications)."""
    actions_taken: int = 0
    actions_failed: int = 0
    actions_deferred: int = 0
    actions_planned: int = 0
    gaps: int = 0
    storage_commits: int = 0
    incidents: list[str] = field(default_factory=list)
    exit_reason: ExitReason = ExitReason.FINISHED
    rate_limit_used: int | None = None
    rate_limit_remaining: int | None = None
    dry_run: bool = False

    @property
    def events_processed(self) -> int:
        return sum(self.events_by_route.values())


@dataclass
class PollOptions:
    user: str
    interval: float = 60.0
    dry_run: bool = False
    backfill: bool = False
    max_pages: int = 3
    heartbeat_interval: float = 900.0
    session_id: str | None = None
    mode: str = "local"
    run_id: str | None = None
    run_url: str | None = None
    deadline: float | None = None
    kernel_repos: tuple[str, ...] = ()
    kernel_owners: tuple[str, ...] = ()
    rebaseline: bool = False
    """When the stored position is unusable, take a new baseline instead of stopping."""
    inbox_probe_every: int = 5
    """While the feed answers 304, ask the branch whether it moved (``ls-remote``) every this many cycles."""
    sources: frozenset[Source] = frozenset({Source.EVENTS})
    """What to poll: the user's events, the notifications addressed to them, or both."""


class Poller:
    """One user's polling session."""

    def __init__(
        self,
        options: PollOptions,
        *,
        client: GitHubAPI,
        storage: Storage,
        clock: Clock,
        executor: Executor,
        planner: Planner,
        registry: KernelRegistry,
        budget: WriteBudget,
        sealer: Sealer | None = None,
        observer: Observer | None = None,
        stop: threading.Event | None = None,
        session_hook: Callable[[Session], None] | None = None,
    ) -> None:
        self.opts = options
        self.client = client
        self.storage = storage
        self.clock = clock
        self.executor = executor
        self.planner = planner
        self.registry = registry
        self.budget = budget
        self.sealer = sealer
        self.observer: Observer = observer or NullObserver()
        self.stop = stop or threading.Event()
        self.session_hook = session_hook
        self.stats = RunStats(user=options.user)
        self.cursor: Cursor | None = None
        self.session: Session | None = None
        self._cycle = 0
        self._pending_records: list[ProcessedEvent] = []
        self._pending_outbox: dict[str, inbox.Outcome] = {}
        self._last_heartbeat = 0.0
        self._effective_interval = options.interval
        self._cursor_dirty = False
        self._new_etag: str | None = None
        self._feed_unchanged = False
        self._quiet_cycles = 0
        self._sources = set(options.sources)
        self.stats.sources = tuple(source.value for source in Source if source in self._sources)
        self.notifications_cursor: NotificationCursor | None = None
        self._notifications_dirty = False
        self._notifications_backlog = False
        self._poll_intervals: dict[Source, int] = {}
        self._owner_checked = False

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Load the cursor and registry, and claim the user's session."""
        self.stats.started_at = self.clock.now()
        # A damaged file stops the run here, before anything is acted on or rewritten.
        layout.check_user_files(self.storage, self.opts.user)
        self.cursor = layout.load_cursor(self.storage, self.opts.user)
        self.notifications_cursor = layout.load_notification_cursor(self.storage, self.opts.user)
        self.registry.entries.update(layout.load_registry(self.storage))
        self._seed_budget()
        layout.check_key(self.storage, self.opts.user, self.sealer)
        if self.opts.dry_run:
            return
        if self.sealer is not None:
            rekey = partial(transactions.rekey_private_names, sealer=self.sealer)
            self._counted(transactions.apply(self.storage, rekey, "storage: key private repo names"))
            self.registry.entries.clear()
            self.registry.entries.update(layout.load_registry(self.storage))
        now = self.clock.now()
        incoming = sessions.new_session(
            self.opts.user,
            self.opts.mode,
            now,
            deadline_s=(self.opts.deadline - now) if self.opts.deadline else None,
            session_id=self.opts.session_id,
            run_id=self.opts.run_id,
            run_url=self.opts.run_url,
        )
        incoming = sessions.activate(incoming, now, run_id=self.opts.run_id, run_url=self.opts.run_url)
        self.session = incoming
        self.stats.session_id = incoming.id
        hb = self.opts.heartbeat_interval
        user = self.opts.user
        claim = partial(transactions.claim_session, user=user, incoming=incoming, now=now, heartbeat_interval=hb)
        applied = self._counted(
            transactions.apply(self.storage, claim, f"session {incoming.id[:12]}: start for {self.opts.user}")
        )
        winner = transactions.session_winner(applied.view, user, incoming, now=now, heartbeat_interval=hb)
        if winner.id != incoming.id:
            self.session = None
            raise SupersededError(f"superseded before starting: a newer session of {user} is already running")
        if winner.runs != incoming.runs:
            # A chained run continues the session its predecessor handed over at the deadline
            # (``sessions.can_continue``): the same id, the run chain carried on.
            incoming = winner
            self.session = winner
        self._last_heartbeat = now
        if self.session_hook:
            self.session_hook(incoming)

    def _seed_budget(self) -> None:
        """Count the writes stored in the last hour, so a restart or the next chained run
        stays inside GitHub's content-creation limits together with its predecessor."""
        now = self.clock.now()
        times = [
            result.at
            for record in layout.list_processed(self.storage, self.opts.user, since=now - 3600.0)
            for result in record.actions
            if result.status is ActionStatus.DONE and KINDS[result.kind].writes
        ]
        self.budget.seed(times)

    def finish(self, reason: ExitReason = ExitReason.FINISHED, *, failed: bool = False) -> RunStats:
        """Flush state and end the session; safe to call on every exit path."""
        self.stats.exit_reason = reason
        self.stats.ended_at = self.clock.now()
        self.stats.dry_run = self.opts.dry_run
        self.stats.rate_limit_used = self.client.rate.used
        self.stats.rate_limit_remaining = self.client.rate.remaining
        session = self.session
        ended: Session | None = None
        if session is not None and not self.opts.dry_run:
            ended = sessions.end(session, self.clock.now(), counts=self._counts(), failed=failed)
        self._flush(ended, f"session {session.id[:12] if session else '-'}: {reason}")
        if ended is not None:
            self.session = ended
            if self.session_hook:
                self.session_hook(ended)
        self.stats.storage_commits = getattr(self.storage, "commits_made", self.stats.storage_commits)
        return self.stats

    def _counts(self) -> dict[str, int]:
        return {
            "events": self.stats.events_processed,
            "actions": self.stats.actions_taken,
            "failed": self.stats.actions_failed,
            "cycles": self.stats.cycles,
        }

    def run(self, *, once: bool = False) -> RunStats:
        """Cycle until the deadline, ``stop`` or (with ``once``) after one cycle."""
        reason = ExitReason.FINISHED
        try:
            while not self.stop.is_set():
                report = self.cycle()
                if once:
                    reason = ExitReason.ONE_CYCLE
                    break
                if self.opts.deadline is not None and self.clock.now() >= self.opts.deadline:
                    reason = ExitReason.DEADLINE
                    break
                wait = self._effective_interval
                if report.wait_until is not None:
                    wait = max(wait, report.wait_until - self.clock.now())
                if self.opts.deadline is not None:
                    wait = min(wait, max(0.0, self.opts.deadline - self.clock.now()))
                if self.clock.sleep(wait, self.stop):
                    break
            else:
                reason = ExitReason.SIGNAL
            if self.stop.is_set():
                reason = ExitReason.SIGNAL
        except SupersededError:
            self.session = None  # the newer session owns the record now
            self.finish(ExitReason.SUPERSEDED)
            raise
        except AuthError:
            self.finish(ExitReason.TOKEN_REJECTED, failed=True)
            raise
        except BaseException:
            self.finish(ExitReason.CRASHED, failed=True)
            raise
        return self.finish(reason)

    # -- one cycle ------------------------------------------------------------------

    def cycle(self) -> CycleReport:
        """Poll once, act on what is new, and commit at most once."""
        self._cycle += 1
        self.stats.cycles += 1
        self.observer.cycle_started(self._cycle)
        report = CycleReport(number=self._cycle, status=CycleStatus.IDLE)
        try:
            self._cycle_body(report)
        except HistoryRewrittenError as exc:
            self._position_unusable(layout.IncidentKind.HISTORY_REWRITTEN, str(exc))
            # --rebaseline: the next cycle takes a baseline on the branch as it now is, and this
            # session is claimed again there (the rewritten branch may not hold it any more).
            self.cursor = None
            self._cursor_dirty = False
            report.status = CycleStatus.ERROR
            self._reclaim()
        self.observer.cycle_finished(report)
        return report

    def _cycle_body(self, report: CycleReport) -> None:
        self._feed_unchanged = False
        self._owner_checked = False
        try:
            self._poll_sources(report)
        except RateLimitedError as exc:
            report.status = CycleStatus.RATE_LIMITED
            report.wait_until = exc.retry_at
            self.observer.warn(f"rate limited by GitHub; waiting until {_hhmm(exc.retry_at)} ({exc.message})")
        except GitHubError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                raise  # e.g. 404 for a user that does not exist: waiting will not help
            # Retries spent (5xx outage, resets, a garbled body): this cycle is lost, not the run.
            report.status = CycleStatus.ERROR
            self.observer.warn(f"{exc.message}; trying again next cycle")
        if not self.opts.dry_run and self.session is not None and self._inbox_may_have_changed():
            # See requests the worker queued from another process (a git fetch; no API cost).
            self.storage.refresh()
        self._drain_inbox()
        heartbeat_due = (
            self.session is not None and self.clock.now() - self._last_heartbeat >= self.opts.heartbeat_interval
        )
        dirty = self._cursor_dirty or self._notifications_dirty
        if self._pending_records or dirty or heartbeat_due or self._pending_outbox:
            report.commit = self._flush(self._heartbeat() if heartbeat_due else None, self._message(report))
            if heartbeat_due and self.session is not None and self.session_hook:
                self.session_hook(self.session)

    def _reclaim(self) -> None:
        """Claim this run's session again (``claim_session``: a newer live one stored still wins)."""
        if self.session is None or self.opts.dry_run:
            return
        now, hb = self.clock.now(), self.opts.heartbeat_interval
        claim = partial(
            transactions.claim_session, user=self.opts.user, incoming=self.session, now=now, heartbeat_interval=hb
        )
        self._counted(transactions.apply(self.storage, claim, f"session {self.session.id[:12]}: claim again"))

    def _inbox_may_have_changed(self) -> bool:
        """False on most idle cycles, which then run no git process at all.

        After a 304 from the feed nothing of ours changed the branch; only another process (the
        worker queueing a request) can have. That is asked cheaply every ``inbox_probe_every``
        quiet cycles (``Storage.remote_moved``: one ``ls-remote``), and fetched only when it moved.
        """
        if not self._feed_unchanged:
            self._quiet_cycles = 0
            return True
        self._quiet_cycles += 1
        if self._quiet_cycles % max(1, self.opts.inbox_probe_every):
            return False
        moved = getattr(self.storage, "remote_moved", None)
        # Pollers sharing one Storage (the worker's) share one answer per half interval.
        return not callable(moved) or bool(moved(max_age=self._effective_interval / 2))

    def _position_unusable(self, kind: layout.IncidentKind, detail: str) -> None:
        """Warn loudly (an annotation in Actions), record it on the branch, and stop unless ``--rebaseline``."""
        self.stats.incidents.append(kind.value)
        if self.opts.rebaseline:
            self.observer.warn(f"{detail}; taking a new baseline (--rebaseline): events in between are not acted on")
        else:
            self.observer.warn(f"{detail}; stopping before acting (run `symbiote poll --rebaseline` to start over)")
        if not self.opts.dry_run:
            record = partial(
                transactions.record_incident, user=self.opts.user, kind=kind, detail=detail, at=self.clock.now()
            )
            self._counted(transactions.apply(self.storage, record, f"poll {self.opts.user}: {kind.value}"))
        if not self.opts.rebaseline:
            raise PositionUnusableError(
                f"{detail}; nothing was acted on: run `symbiote poll --rebaseline` to take a new baseline"
            )

    def _message(self, report: CycleReport) -> str:
        if report.handled:
            notes = f", {report.notifications} notifications" if report.notifications else ""
            return f"poll {self.opts.user}: {report.handled} items{notes} (cycle {report.number})"
        if report.status is CycleStatus.BASELINE:
            return f"poll {self.opts.user}: baseline"
        return f"poll {self.opts.user}: heartbeat"

    def _heartbeat(self) -> Session | None:
        if self.session is None:
            return None
        self.session = sessions.heartbeat(self.session, self.clock.now(), counts=self._counts())
        self._last_heartbeat = self.clock.now()
        return self.session

    def _fetch(self, report: CycleReport) -> tuple[list[Event], bool, str | None] | None:
        """New events oldest first, whether the cursor fell out of the window, and the newest
        event's id when the cursor is ahead of it (a cursor from another feed, or restored wrongly)."""
        cursor = self.cursor
        last = cursor.last_id_int if cursor else 0
        # With a backlog (events deferred by pacing) the feed may be unchanged, so
        # the ETag must not be sent: a 304 would hide the events still to handle.
        etag = cursor.etag if cursor and cursor.etag else None
        first = self.client.list_events(self.opts.user, etag=etag, per_page=PER_PAGE)
        report.poll_interval = first.poll_interval
        if first.poll_interval:
            # Obey X-Poll-Interval (https://docs.github.com/rest/activity/events).
            self._obey_poll_interval(Source.EVENTS, first.poll_interval)
        self._feed_unchanged = first.status == 304
        if first.status == 304:
            return None
        pages = [first]
        raw = list(first.events)
        while (
            pages[-1].has_next
            and len(pages) < self.opts.max_pages
            and ((cursor is None and self.opts.backfill) or cursor is not None)
            and all(_id(e) > last for e in pages[-1].events)
        ):
            nxt = self.client.list_events(self.opts.user, page=len(pages) + 1, per_page=PER_PAGE)
            pages.append(nxt)
            raw.extend(nxt.events)
        self._new_etag = first.etag
        events: dict[str, Event] = {}
        for item in raw:
            try:
                event = Event.model_validate(item)
            except ValidationError:
                self.observer.warn("skipped a malformed event from the feed")
                continue
            events[event.id] = event
        ordered = sorted(events.values(), key=lambda e: e.id_int)
        report.fetched = len(ordered)
        # A gap: every event we could read is newer than the cursor, and there is
        # nothing older left to read (end of the 300-event window or our page cap).
        gap = bool(cursor is not None and last and ordered and ordered[0].id_int > last)
        ahead = ordered[-1].id if cursor is not None and last and ordered and ordered[-1].id_int < last else None
        return [e for e in ordered if e.id_int > last], gap, ahead

    def _poll_sources(self, report: CycleReport) -> None:
        """Both sources, events first; the cycle is quiet only when every source answered 304."""
        if Source.EVENTS in self._sources:
            self._poll_and_handle(report)
        else:
            self._feed_unchanged = True
        if Source.NOTIFICATIONS in self._sources:
            unchanged = self._poll_notifications(report)
            self._feed_unchanged = self._feed_unchanged and unchanged

    def _obey_poll_interval(self, source: Source, seconds: int) -> None:
        """Wait at least what every source's ``X-Poll-Interval`` asks (and ``--interval``)."""
        self._poll_intervals[source] = seconds
        self._effective_interval = max([self.opts.interval, *map(float, self._poll_intervals.values())])

    def _poll_notifications(self, report: CycleReport) -> bool:
        """Read the notifications list, act on what is new, oldest first; True when it was unchanged (304).

        Shares the write budget with the events handled before it; what the budget leaves is kept
        for the next cycles (``Last-Modified`` is then not stored, so the list is read again).
        """
        cursor = self.notifications_cursor
        try:
            got = notifications.read(
                self.client,
                cursor,
                backlog=self._notifications_backlog,
                backfill=self.opts.backfill,
                max_pages=self.opts.max_pages,
                warn=self.observer.warn,
            )
        except (AuthError, RateLimitedError):
            raise
        except GitHubError as exc:
            # 403: a fine-grained or app token (``doctor`` says so beforehand); 404: the endpoint is not
            # there for this token (as ``doctor`` reads it too). Events go on either way.
            if exc.status not in (403, 404):
                raise
            self._drop_notifications(exc)
            return True
        if got.poll_interval:
            # Obey X-Poll-Interval (https://docs.github.com/rest/activity/notifications).
            self._obey_poll_interval(Source.NOTIFICATIONS, got.poll_interval)
        if got.status == 304:
            return True
        report.fetched += got.fetched
        if cursor is None:
            cursor = self.notifications_cursor = notifications.baseline(
                self.opts.user, got, now=self.clock.now(), backfill=self.opts.backfill
            )
            self._notifications_dirty = True
            if not self.opts.backfill:
                if report.status is CycleStatus.IDLE:
                    report.status = CycleStatus.BASELINE
                at = cursor.floor or "an empty list"
                self.observer.warn(
                    f"first run of notifications: baseline taken at {at}; older notifications are not acted on"
                    " (use --backfill to act on them)"
                )
                return False
        if got.gap:
            report.gap = True
            self.stats.gaps += 1
            self.observer.warn(
                f"gap: more than {self.opts.max_pages} pages of notifications were new; older updates were not read"
            )
        user = self.opts.user
        new = [notifications.screen_own(self.client, n) if self.planner.plan(n, user) else n for n in got.new]
        report.new += len(new)
        report.notifications = len(new)
        self._act_on(new, report, "notifications", partial(self._advance_notifications, cursor, new, got))
        return False

    def _advance_notifications(
        self, cursor: NotificationCursor, new: list[Notification], got: notifications.Read, handled: int
    ) -> None:
        """Remember the first ``handled`` of ``new`` as handled.

        ``Last-Modified`` is kept (and sent back as ``If-Modified-Since``) only after a read that found
        nothing new: a read with news is followed by one unconditional read, so an update made in the
        same second as the last ``Last-Modified`` (HTTP dates have one-second resolution) is not hidden
        behind a 304. While updates wait for the write budget, old threads are not forgotten either
        (``pruned``: the floor must stay below them).
        """
        left = len(new) - handled
        self._notifications_backlog = bool(left)
        updated = cursor.handled(new[:handled])
        if left:
            updated = updated.model_copy(update={"last_modified": None})
        else:
            last_modified = None if new else got.last_modified
            updated = updated.pruned(self.clock.now()).model_copy(update={"last_modified": last_modified})
        if updated != cursor:
            self.notifications_cursor = updated
            self._notifications_dirty = True

    def _drop_notifications(self, exc: GitHubError) -> None:
        """GitHub refused the notifications list (a fine-grained token): warn once, poll the rest."""
        self._sources.discard(Source.NOTIFICATIONS)
        self._poll_intervals.pop(Source.NOTIFICATIONS, None)
        self._effective_interval = max([self.opts.interval, *map(float, self._poll_intervals.values())])
        self.stats.sources = tuple(source.value for source in Source if source in self._sources)
        rest = " and ".join(self.stats.sources) or "nothing"
        message = (
            f"GitHub refused to list notifications ({exc.status}): only classic tokens with the notifications"
            f" or repo scope can read them, fine-grained ones cannot; polling {rest} for the rest of this run"
            " (use a classic token, or set SYMBIOTE_SOURCES=events)"
        )
        self.stats.source_warnings.append(message)
        self.observer.warn(message)
        if not self._sources:
            raise GitHubError(f"{exc.message}: notifications were the only source and GitHub refuses them", 403)

    def _poll_and_handle(self, report: CycleReport) -> None:
        fetched = self._fetch(report)
        if fetched is None:
            return
        new, gap, ahead = fetched
        report.new = len(new)
        unusable: Cursor | None = None
        if ahead is not None and self.cursor is not None:
            self._position_unusable(
                layout.IncidentKind.CURSOR_AHEAD,
                f"cursor of {self.opts.user} is at event {self.cursor.last_event_id}, ahead of the newest event"
                f" in the feed ({ahead})",
            )
            unusable, self.cursor = self.cursor, None
            new = []
        if self.cursor is None:
            self.cursor = Cursor(user=self.opts.user.lower(), baseline_at=self.clock.now())
            if not self.opts.backfill or ahead is not None:
                newest = new[-1].id if new else ahead
                self.cursor = self.cursor.model_copy(update={"last_event_id": newest, "etag": self._new_etag})
                self._cursor_dirty = True
                if unusable is not None and not self.opts.dry_run:
                    # Backwards on purpose: flush_cycle's advance_cursor would keep the unusable one.
                    replace = partial(
                        transactions.rebaseline_cursor, user=self.opts.user, cursor=self.cursor,
                        unusable=unusable.last_event_id, now=self.clock.now(),
                    )
                    self._counted(transactions.apply(self.storage, replace, f"poll {self.opts.user}: rebaseline"))
                    self._cursor_dirty = False
                report.status = CycleStatus.BASELINE
                self.observer.warn(
                    f"first run: baseline taken at event {newest or '(none)'}; older events are not acted on"
                    " (use --backfill to act on them)"
                )
                return
        if gap:
            report.gap = True
            self.stats.gaps += 1
            self.observer.warn(
                f"gap: events after {self.cursor.last_event_id} fell out of GitHub's 300-event window"
                " before they could be read"
            )
        self._act_on(new, report, "events", partial(self._advance_events, new))

    def _advance_events(self, new: Sequence[Item], handled: int) -> None:
        """Move the cursor past the first ``handled`` of ``new``; keep the ETag only when nothing is
        left behind (see ``_fetch``)."""
        if self.cursor is None:
            return
        update: dict[str, Any] = {}
        if handled:
            update["last_event_id"] = new[handled - 1].id
        update["etag"] = self._new_etag if handled == len(new) else None
        if update.get("etag") != self.cursor.etag or "last_event_id" in update:
            self.cursor = self.cursor.model_copy(update=update)
            self._cursor_dirty = True

    def _act_on(
        self, items: Sequence[Item], report: CycleReport, what: str, advance: Callable[[int], None]
    ) -> int:
        """Plan, route and act on ``items`` (one source's new ones, oldest first) until the write budget
        runs out or the run stops; the number handled. The rest count as deferred: the source's cursor
        keeps them for the next cycles.

        ``advance(n)`` moves that cursor past the first ``n`` items, also when an action raises (a rate
        limit, a rejected token): what was done before is then stored with the records, so the next
        cycle does not do it again (a dispatch has no marker to find).
        """
        if not items:
            advance(0)
            return 0
        self._check_owner()
        # Plan first: only repos where something would be done need the kernel lookup
        # (a push or a star costs no API call).
        plans = {item.id: self.planner.plan(item, self.opts.user) for item in items}
        self.registry.resolve([item for item in items if plans[item.id]])
        if report.status in (CycleStatus.IDLE, CycleStatus.BASELINE):
            report.status = CycleStatus.EVENTS
        handled = 0
        try:
            for item in items:
                if self.stop.is_set() or not self._handle(item, plans[item.id]):
                    break
                handled += 1
        finally:
            advance(handled)
        left = len(items) - handled
        report.handled += handled
        report.deferred += left
        if left and not self.stop.is_set():
            report.status = CycleStatus.BACKLOG
            self.stats.actions_deferred += left
            self.observer.warn(f"write budget reached: {left} {what} carried to the next cycles")
        return handled

    def _check_owner(self) -> None:
        """Stop before acting if a newer session of this user took over (asked once a cycle)."""
        if self.session is None or self.opts.dry_run or self._owner_checked:
            return
        self._owner_checked = True
        refresh = getattr(self.storage, "refresh", None)
        if callable(refresh):
            refresh()
        stored = layout.load_session(self.storage, self.opts.user)
        if not sessions.still_owner(stored, self.session.id):
            raise SupersededError(f"session {self.session.id[:12]} was superseded by a newer session; stopping")

    def _handle(self, event: Item, planned: list[ActionRequest]) -> bool:
        """Route and act on one event or notification; False when the write budget is spent."""
        ctx = RoutingContext.build(
            self.opts.user,
            kernel_repos=self.opts.kernel_repos,
            kernel_owners=self.opts.kernel_owners,
            registry=self.registry.entries,
            planned={event.id: (summarize(planned), any(is_sensitive(r) for r in planned))},
            names=self.sealer.names if self.sealer is not None else None,
        )
        decision = route_event(event, ctx)
        requests: list[ActionRequest] = []
        if decision.route in (Route.APP, Route.USER):
            auth = AuthMode.USER if decision.route is Route.USER else AuthMode.APP
            requests = [r.model_copy(update={"auth": auth}) for r in planned]
            writes = sum(1 for r in requests if KINDS[r.kind].writes)
            if not self.opts.dry_run and not self.budget.allows(writes):
                return False
        self.observer.decided(event, decision)
        results: list[ActionResult] = []
        for request in requests:
            result = self.executor.execute(request, since=event.created_at)
            results.append(result)
            self._count(result)
            if result.status is ActionStatus.DONE and KINDS[request.kind].writes:
                self.budget.record(1)
            self.observer.acted(event, request, result)
        self.stats.events_by_route[decision.route.value] += 1
        self.stats.events_by_type[event.type] += 1
        notification = event.reason if isinstance(event, Notification) else None
        if notification is not None:
            self.stats.notifications_by_reason[notification] += 1
        self._pending_records.append(
            ProcessedEvent(
                event_id=event.id,
                type=event.type,
                repo=event.repo_name,
                route=decision.route,
                reason=decision.reason,
                created_at=event.created_at,
                processed_at=self.clock.now(),
                private=event.private,
                actions=results,
                notification=notification,
            )
        )
        return True

    def _count(self, result: ActionResult) -> None:
        if result.status in (ActionStatus.DONE, ActionStatus.ALREADY_DONE):
            self.stats.actions_taken += 1
        elif result.status is ActionStatus.FAILED:
            self.stats.actions_failed += 1
        elif result.status is ActionStatus.PLANNED:
            self.stats.actions_planned += 1

    # -- inbox (requests forwarded by the worker) ---------------------------------

    def _drain_inbox(self) -> None:
        """Execute queued state requests once each; results go to the outbox."""
        if self.opts.dry_run:
            return
        for state_id, outcome in inbox.drain(
            self.storage, self.opts.user, self.executor, self.budget, sealer=self.sealer, clock=self.clock
        ):
            self._pending_outbox[state_id] = outcome
            self._count(outcome.result)

    # -- committing ---------------------------------------------------------------------

    def _flush(self, session: Session | None, message: str) -> str | None:
        """Store what the cycle did in one commit (``transactions.flush_cycle``); None when nothing changed."""
        if self.opts.dry_run:
            self._pending_records.clear()
            return None
        user = self.opts.user
        cycle = transactions.Cycle(
            cursor=self.cursor if self._cursor_dirty else None,
            # Sealed once here, not on every retry of the transaction.
            events=[protect_record(record, self.sealer) for record in self._pending_records],
            finished=inbox.finished(user, self._pending_outbox.values(), self.sealer),
            registry=self.registry.take_changes(),
            session=session,
            notifications=self.notifications_cursor if self._notifications_dirty else None,
        )
        if not cycle:
            return None
        flush = partial(transactions.flush_cycle, user=user, cycle=cycle, now=self.clock.now())
        sha = self._counted(transactions.apply(self.storage, flush, message)).commit
        self._pending_records.clear()
        self._pending_outbox.clear()
        self._cursor_dirty = False
        self._notifications_dirty = False
        return sha

    def _counted(self, applied: transactions.Applied) -> transactions.Applied:
        if applied.commit is not None:
            self.stats.storage_commits += 1
        return applied


def _id(item: dict[str, Any]) -> int:
    value = item.get("id")
    try:
        return int(str(value))
    except ValueError:
        return 0


def _hhmm(ts: float) -> str:
    return iso(ts)[11:16] + " UTC"
