"""``symbiote poll``: poll your events and act on new ones; in Actions, report and chain."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from symbiote_cli.cli.commands import common
from symbiote_cli.core.errors import SupersededError, SymbioteError


class CannotContinueError(SymbioteError):
    """A run whose session was refused or superseded: it fails visibly (exit 1, an error annotation)."""


if TYPE_CHECKING:
    from symbiote_cli.flows.poll import RunStats


def poll(
    user: Annotated[str | None, typer.Option(help="GitHub login to poll \\[default: the token's owner]")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between polls (X-Poll-Interval wins if larger) \\[default: 60]")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Stop after this long: 30s, 90m, 6h, 5h45m.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and print; write nothing.")] = False,
    backfill: Annotated[
        bool,
        typer.Option("--backfill", help="On the first run, act on the events (and notifications) already there."),
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="What to poll, comma-separated: events (your activity), notifications (what others ask of you;"
            " classic tokens only) \\[default: SYMBIOTE_SOURCES, else events]",
        ),
    ] = None,
    rebaseline: Annotated[
        bool,
        typer.Option(
            "--rebaseline",
            help="When the stored cursor is unusable (ahead of the feed, or the storage branch was rolled back or"
            " replaced), take a new baseline instead of stopping.",
        ),
    ] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    session_id: Annotated[str | None, typer.Option(help="Session id given by the worker.")] = None,
    callback_url: Annotated[str | None, typer.Option(help="Worker URL to report the session to.")] = None,
    chain: Annotated[
        bool, typer.Option("--chain", help="In GitHub Actions: dispatch the next run at the deadline.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines for machines.")] = False,
    debug: common.DebugOpt = False,
) -> None:
    """Poll your events (and notifications) and act on new ones, until stopped or --duration passes.

    Example: `GH_PAT=... symbiote poll --duration 5h45m`
    """
    from symbiote_cli.core.durations import parse_duration  # noqa: PLC0415 - lazy: --help stays fast

    if common.in_actions():
        common.mask_early()
    stats: RunStats | None = None
    error: BaseException | None = None
    observer: Any = None
    try:
        seconds = parse_duration(duration) if duration else None
        settings = common.settings(
            debug, interval=interval, storage_repo=storage_repo, storage_branch=storage_branch, sources=source
        )
        from symbiote_cli.wiring import PollRequest, private_names  # noqa: PLC0415 - lazy: --help stays fast

        stop = threading.Event()
        _install_signals(stop)
        req = PollRequest(
            user=user,
            once=once,
            duration=seconds,
            dry_run=dry_run,
            backfill=backfill,
            session_id=session_id,
            mode="actions" if common.in_actions() else "local",
            run_id=os.environ.get("GITHUB_RUN_ID"),
            run_url=_run_url(),
            callback_url=callback_url,
            rebaseline=rebaseline,
        )
        observer = _observer(json_out, settings.interval, private_names(settings))
        stats = _run_or_fail(settings, req, observer, stop, json_out)
    except BaseException as exc:
        error = exc
        raise
    finally:
        # GitHub uploads the step summary when the step ends: write it on every exit path.
        if observer is not None:
            from symbiote_cli.cli.liveview import close_observer  # noqa: PLC0415 - lazy: --help stays fast

            close_observer(observer)
        if common.in_actions():
            _actions_report(stats, error)
    from symbiote_cli.flows.poll import ExitReason  # noqa: PLC0415 - lazy: --help stays fast

    if chain and stats.exit_reason is ExitReason.DEADLINE:
        # The successor continues this session (same id, new run id): see core.sessions.can_continue.
        from symbiote_cli.wiring import chain_next_run  # noqa: PLC0415 - lazy: --help stays fast

        workflow = chain_next_run(
            settings,
            dict(os.environ),
            {
                "user": user or "",
                "duration": duration or "",
                "session_id": session_id or stats.session_id or "",
                "callback_url": callback_url or "",
            },
        )
        from symbiote_cli.cli.output import emit  # noqa: PLC0415 - lazy: --help stays fast

        emit(f"chained the next run of {workflow}")
    _print_stats(stats, json_out)


def _run_or_fail(settings: Any, req: Any, observer: Any, stop: threading.Event, json_out: bool) -> RunStats:
    """``run_poll``; a run refused or superseded (before or while polling) cannot continue: it
    fails visibly (``CannotContinueError``: exit 1 and an error annotation), never a silent 0."""
    from symbiote_cli.flows.poll import ExitReason  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import run_poll  # noqa: PLC0415 - lazy: --help stays fast

    try:
        stats = run_poll(settings, req, observer=observer, stop=stop)
    except SupersededError as exc:
        raise CannotContinueError(f"this run cannot continue: {exc.message}") from None
    if stats.exit_reason is ExitReason.SUPERSEDED:
        _print_stats(stats, json_out)
        session = (stats.session_id or "-")[:12]
        raise CannotContinueError(f"this run cannot continue: session {session} was superseded or refused")
    return stats


def _observer(json_out: bool, interval: float, names: bytes | None) -> Any:
    """Live view in a terminal, grouped lines with annotations in Actions, plain lines otherwise; a hidden
    private repo is named as the storage branch names it (``names``: keyed with the storage key)."""
    if common.in_actions() and not json_out:
        from symbiote_cli.cli.output import ActionsObserver  # noqa: PLC0415 - lazy: --help stays fast

        return ActionsObserver(names=names)
    from symbiote_cli.cli.liveview import make_observer  # noqa: PLC0415 - lazy: --help stays fast

    return make_observer(json_out, reveal_private=not common.in_actions(), interval=interval, names=names)


def _run_url() -> str | None:
    server, repo, run = (os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else None


def _install_signals(stop: threading.Event) -> None:
    """First SIGINT/SIGTERM: finish the event in hand and flush. Second: stop now.

    GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later.
    """
    hits = {"n": 0}

    def handle(_signum: int, _frame: object) -> None:
        hits["n"] += 1
        stop.set()
        if hits["n"] > 1:
            raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handle)
        signal.signal(signal.SIGTERM, handle)


def _actions_report(stats: RunStats | None, error: BaseException | None) -> None:
    try:
        from symbiote_cli.cli import gha  # noqa: PLC0415 - lazy: --help stays fast
    except ImportError:  # pragma: no cover - gha ships with the package
        return
    gha.report_run(stats, error)


def _print_stats(stats: RunStats, json_out: bool) -> None:
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast

    if json_out:
        emit_json(
            {
                "kind": "summary",
                "session_id": stats.session_id,
                "cycles": stats.cycles,
                "events": dict(stats.events_by_route),
                "actions_taken": stats.actions_taken,
                "actions_failed": stats.actions_failed,
                "storage_commits": stats.storage_commits,
                "exit_reason": stats.exit_reason,
            }
        )
        return
    routes = ", ".join(f"{k} {v}" for k, v in sorted(stats.events_by_route.items())) or "none"
    emit(
        f"{stats.exit_reason}: {stats.cycles} cycles, events: {routes}; actions: {stats.actions_taken} taken, "
        f"{stats.actions_failed} failed; {stats.storage_commits} storage commits"
    )
