"""The ``symbiote`` command line: parse, call the core, print.

Every failure is a ``SymbioteError`` raised by the core and turned here, once,
into one red line on stderr and a named exit code (0 ok, 1 failure, 2 usage,
configuration or input error). ``--debug`` or ``LOG_LEVEL=DEBUG`` (also
``SYMBIOTE_LOG_LEVEL``) shows tracebacks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from symbiote_cli import __version__
from symbiote_cli.core.errors import ExitCode, SymbioteError, UsageError

if TYPE_CHECKING:
    from symbiote_cli.flows.poll import RunStats
    from symbiote_cli.settings import Settings

app = typer.Typer(
    name="symbiote",
    help="Symbiote: a proactive GitHub agent that polls your events and acts on your behalf.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
store_app = typer.Typer(help="Inspect the storage branch (`__STORAGE__`).", no_args_is_help=True)
app.add_typer(store_app, name="store")

_DEBUG = False

StorageRepoOpt = Annotated[
    Path | None, typer.Option("--storage-repo", help="Fork checkout holding the storage branch \\[default: .]")
]
StorageBranchOpt = Annotated[
    str | None, typer.Option("--storage-branch", help="Storage branch \\[default: __STORAGE__]")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"symbiote {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Symbiote polls `GET /users/{you}/events`, decides who handles each new event
    (UbiquityOS kernel, app or your own token) and acts, keeping its state on the
    `__STORAGE__` branch of your fork.
    """


def _settings(debug: bool = False, **overrides: Any) -> Settings:
    from symbiote_cli.cli.output import REDACT, setup_logging
    from symbiote_cli.settings import LogLevel, load_settings

    global _DEBUG  # noqa: PLW0603 - one process-wide switch read by main()
    settings = load_settings(**overrides)
    if debug or settings.log_level is LogLevel.DEBUG:
        _DEBUG = True
    for secret in settings.secrets():
        REDACT.add(secret)
    setup_logging(LogLevel.DEBUG if _DEBUG else settings.log_level)
    return settings


def _debug_requested() -> bool:
    """``--debug``, or a DEBUG level read the way the settings read it (``LOG_LEVEL``, ``.dev.vars``...)."""
    if _DEBUG or "--debug" in sys.argv:
        return True
    from symbiote_cli.settings import LogLevel, load_settings

    try:
        return load_settings().log_level is LogLevel.DEBUG
    except Exception:  # noqa: BLE001 - deciding whether to show a traceback must never fail itself
        return False


def _in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


# -- poll -----------------------------------------------------------------------------


@app.command()
def poll(
    user: Annotated[str | None, typer.Option(help="GitHub login to poll \\[default: the token's owner]")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    interval: Annotated[
        float | None, typer.Option(help="Seconds between polls (X-Poll-Interval wins if larger) \\[default: 60]")
    ] = None,
    duration: Annotated[str | None, typer.Option(help="Stop after this long: 30s, 90m, 6h, 5h45m.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and print; write nothing.")] = False,
    backfill: Annotated[
        bool, typer.Option("--backfill", help="On the first run, act on the events already in the feed.")
    ] = False,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    session_id: Annotated[str | None, typer.Option(help="Session id given by the worker.")] = None,
    callback_url: Annotated[str | None, typer.Option(help="Worker URL to report the session to.")] = None,
    chain: Annotated[
        bool, typer.Option("--chain", help="In GitHub Actions: dispatch the next run at the deadline.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines for machines.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Poll your events and act on new ones, until stopped or --duration passes.

    Example: `GH_PAT=... symbiote poll --duration 5h45m`
    """
    from symbiote_cli.core.durations import parse_duration

    if _in_actions():
        _mask_early()
    stats: RunStats | None = None
    error: BaseException | None = None
    observer: Any = None
    try:
        seconds = parse_duration(duration) if duration else None
        settings = _settings(debug, interval=interval, storage_repo=storage_repo, storage_branch=storage_branch)
        from symbiote_cli.wiring import PollRequest, run_poll

        stop = threading.Event()
        _install_signals(stop)
        req = PollRequest(
            user=user,
            once=once,
            duration=seconds,
            dry_run=dry_run,
            backfill=backfill,
            session_id=session_id,
            mode="actions" if _in_actions() else "local",
            run_id=os.environ.get("GITHUB_RUN_ID"),
            run_url=_run_url(),
            callback_url=callback_url,
        )
        observer = _observer(json_out, settings.interval)
        stats = run_poll(settings, req, observer=observer, stop=stop)
    except BaseException as exc:
        error = exc
        raise
    finally:
        # GitHub uploads the step summary when the step ends: write it on every exit path.
        if observer is not None:
            from symbiote_cli.cli.liveview import close_observer

            close_observer(observer)
        if _in_actions():
            _actions_report(stats, error)
    if chain and stats.exit_reason == "deadline reached":
        from symbiote_cli.wiring import chain_next_run

        workflow = chain_next_run(
            settings,
            dict(os.environ),
            {
                "user": user or "",
                "duration": duration or "",
                "session_id": session_id or "",
                "callback_url": callback_url or "",
            },
        )
        from symbiote_cli.cli.output import emit

        emit(f"chained the next run of {workflow}")
    _print_stats(stats, json_out)


def _observer(json_out: bool, interval: float) -> Any:
    """Live view in a terminal, grouped lines with annotations in Actions, plain lines otherwise."""
    if _in_actions() and not json_out:
        from symbiote_cli.cli.output import ActionsObserver

        return ActionsObserver()
    from symbiote_cli.cli.liveview import make_observer

    return make_observer(json_out, reveal_private=not _in_actions(), interval=interval)


def _mask_early() -> None:
    """``::add-mask::`` every secret before anything else is printed."""
    from symbiote_cli.cli import gha
    from symbiote_cli.settings import load_settings

    names = ("GH_PAT", "GITHUB_TOKEN", "SYMBIOTE_STORAGE_KEY", "SYMBIOTE_CALLBACK_SECRET", "SYMBIOTE_WORKER_TOKEN")
    secrets = [os.environ.get(name, "") for name in names]
    with contextlib.suppress(SymbioteError):
        secrets.extend(load_settings().secrets())
    gha.add_masks(secrets)


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
        from symbiote_cli.cli import gha
    except ImportError:  # pragma: no cover - gha ships with the package
        return
    gha.report_run(stats, error)


def _print_stats(stats: RunStats, json_out: bool) -> None:
    from symbiote_cli.cli.output import emit, emit_json

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


# -- route ------------------------------------------------------------------------------


@app.command()
def route(
    source: Annotated[str | None, typer.Argument(help="Event JSON file, or - for stdin.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    user: Annotated[str | None, typer.Option(help="Whose feed the events come from \\[default: the actor].")] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="No network: the registry cached on the storage branch only.")
    ] = False,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print who handles each event — kernel, app, user or ignore — and why, as `poll` would.

    Uses the kernel registry cached on the storage branch. With a token it looks up the repos the
    cache lacks, as `poll` does, and caches the answers there. With --offline, or without a token
    (a warning says so), it reads the cache only: a repo it cannot answer for reads
    "kernel status unknown offline" in the reason.
    Reads one event, a JSON array of events or JSON lines.
    Example: `symbiote route event.json --json`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json
    from symbiote_cli.core.inputs import parse_events, read_text
    from symbiote_cli.wiring import route_events

    events = parse_events(read_text(source))
    for decision in route_events(settings, events, user=user, offline=offline):
        if json_out:
            emit_json(decision.model_dump(mode="json"))
        else:
            emit(f"{decision.event_id} {decision.type} {decision.repo} -> {decision.route.value}: {decision.reason}")


# -- act ----------------------------------------------------------------------------------


@app.command()
def act(
    source: Annotated[
        str | None, typer.Argument(help="Action request JSON file, or - for stdin.", show_default=False)
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be done.")] = False,
    state_id: Annotated[
        str | None, typer.Option(help="Act at most once for this state id; result kept in the storage outbox.")
    ] = None,
    inputs_env: Annotated[
        str | None, typer.Option(help="Read workflow inputs (JSON) from this environment variable.")
    ] = None,
    callback_url: Annotated[str | None, typer.Option(help="POST the signed result here.")] = None,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Execute one action request — the same code path `poll` uses.

    Example:
    `echo '{"kind":"comment","repo":"octo/hello","issue_number":1,"body":"hi","idempotency_key":"k1"}'
    | symbiote act -`
    """
    if _in_actions():
        _mask_early()
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json
    from symbiote_cli.flows import act as acting

    if inputs_env is not None:
        outcome = acting.act_from_inputs(
            settings, inputs_env, dict(os.environ), dry_run=dry_run, callback_url=callback_url
        )
    else:
        from symbiote_cli.core.inputs import parse_request, read_text

        request = parse_request(read_text(source))
        outcome = acting.act_once(settings, request, state_id=state_id, dry_run=dry_run, callback_url=callback_url)
    result = outcome.result
    if json_out:
        emit_json({"state_id": outcome.state_id, **result.model_dump(mode="json")})
    else:
        url = f" {result.url}" if result.url else ""
        emit(f"{result.kind.value} {result.repo}: {result.status.value} ({result.detail}){url}")
    if result.status.value == "failed":
        raise typer.Exit(ExitCode.FAILURE)


# -- store ----------------------------------------------------------------------------------


@store_app.command("events")
def store_events(
    user: Annotated[str | None, typer.Option(help="Whose events \\[default: SYMBIOTE_USER, else all users].")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """List processed events, newest first.

    Example: `symbiote store events --user octo --json`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json
    from symbiote_cli.flows import store as storeview

    for record in storeview.events(settings, user or settings.user, limit=limit):
        if json_out:
            emit_json(record.model_dump(mode="json", exclude_none=True))
        else:
            acts = ", ".join(f"{a.kind.value} {a.status.value}" for a in record.actions) or "no action"
            emit(f"{record.event_id} {record.type} {record.repo} -> {record.route.value}: {acts}")


@store_app.command("get")
def store_get(
    path: Annotated[str, typer.Argument(help="File on the storage branch, e.g. users/octo/cursor.json")],
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Print one JSON file of the storage branch.

    Example: `symbiote store get users/octo/cursor.json`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit
    from symbiote_cli.flows import store as storeview

    emit(storeview.get(settings, path))


@store_app.command("log")
def store_log(
    limit: Annotated[int, typer.Option(min=1, help="How many commits.")] = 20,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show the storage branch's recent commits.

    Example: `symbiote store log --limit 5`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit
    from symbiote_cli.flows import store as storeview

    for line in storeview.log_lines(settings, limit):
        emit(line)


@store_app.command("gc")
def store_gc(
    retention_days: Annotated[int | None, typer.Option(min=1, help="Keep this many days \\[default: 30].")] = None,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Prune ended sessions and processed-event logs older than the retention period.

    Example: `symbiote store gc --retention-days 30`
    """
    settings = _settings(
        debug, storage_repo=storage_repo, storage_branch=storage_branch, retention_days=retention_days
    )
    from symbiote_cli.cli.output import emit
    from symbiote_cli.flows import store as storeview

    removed = storeview.gc(settings)
    emit(f"removed {len(removed)} files" + (": " + ", ".join(removed[:20]) if removed else ""))


# -- serve ----------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep 127.0.0.1 unless a proxy fronts it).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 4000,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="SYMBIOTE_WORKER_URL",
            help="The worker's public base URL, for callback URLs \\[default: the request's own URL].",
        ),
    ] = None,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run the worker (FastAPI): sessions, state requests from the kernel, signed callbacks.

    Example: `SYMBIOTE_CALLBACK_SECRET=... SYMBIOTE_WORKER_TOKEN=... symbiote serve --port 4000`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.worker import serve as run_worker

    run_worker(settings, host=host, port=port, public_url=public_url)


# -- rules ----------------------------------------------------------------------------------

rules_app = typer.Typer(
    help="Check and explain the rules that decide what Symbiote does (`.github/symbiote.yml`).",
    no_args_is_help=True,
)
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Rules file \\[default: SYMBIOTE_CONFIG, else .github/symbiote.yml in the fork checkout].",
            show_default=False,
        ),
    ] = None,
    storage_repo: StorageRepoOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Validate a rules file: exit 0, or 2 with one `file:line: field: problem` line per problem.

    Example: `symbiote rules check .github/symbiote.yml`
    """
    settings = _settings(debug, storage_repo=storage_repo)
    from symbiote_cli.cli.output import emit
    from symbiote_cli.core.rulesfile import RulesFileError, load_rules_file, rules_path

    path = rules_path(settings, file)
    if path is None:
        emit("no rules file (SYMBIOTE_CONFIG or .github/symbiote.yml): the built-in rules apply")
        return
    try:
        ruleset = load_rules_file(path)
    except RulesFileError as exc:
        for problem in exc.problems:
            emit(str(problem))
        count = len(exc.problems)
        raise UsageError(f"{count} problem{'s' if count > 1 else ''} in {path}") from None
    names = ", ".join(rule.label(i) for i, rule in enumerate(ruleset.rules))
    emit(f"{path}: {len(ruleset.rules)} rules, valid" + (f" ({names})" if names else ""))


@rules_app.command("explain")
def rules_explain(
    source: Annotated[
        str | None, typer.Argument(help="Event JSON file (events API shape), or - for stdin.", show_default=False)
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="Rules file \\[default: SYMBIOTE_CONFIG, else .github/symbiote.yml, else built-in]."
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="Whose feed the event comes from \\[default: the actor].")] = None,
    storage_repo: StorageRepoOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Show which rule matches an event and what it would do. Plans only: no network, no writes.

    Reads one event, a JSON array of events or JSON lines.
    Example: `symbiote rules explain event.json --rules examples/deploy.yml`
    """
    settings = _settings(debug, storage_repo=storage_repo)
    from symbiote_cli.cli.output import emit, emit_json
    from symbiote_cli.core.inputs import parse_events, read_text
    from symbiote_cli.core.rulesfile import explain_events

    for explained in explain_events(settings, parse_events(read_text(source)), user=user, rules=rules):
        if json_out:
            emit_json(explained.as_json())
        else:
            for line in explained.lines():
                emit(line)


# -- doctor ---------------------------------------------------------------------------------


@app.command()
def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object with every check.")] = False,
    storage_repo: StorageRepoOpt = None,
    storage_branch: StorageBranchOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Check the token, private events, storage branch, Actions in the fork, worker and rules file.

    Each check that fails says how to fix it; exit 0 only when none fails.
    Example: `GH_PAT=... SYMBIOTE_REPO=you/symbiote symbiote doctor`
    """
    settings = _settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit_json
    from symbiote_cli.flows.doctor import Status, json_report, render_table, run_doctor

    checks = run_doctor(settings)
    if json_out:
        emit_json(json_report(checks))
    else:
        from rich.console import Console

        render_table(checks, Console(highlight=False))
    failed = [c.name for c in checks if c.status is Status.FAIL]
    if failed:
        raise SymbioteError(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")


def main() -> None:
    """Entry point: run the app, turn every failure into one line and an exit code."""
    import click

    def error_line(message: str) -> None:
        from symbiote_cli.cli.output import error_line as show

        show(message)

    try:
        code = app(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(ExitCode.OK)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except KeyboardInterrupt:
        sys.exit(ExitCode.OK)
    except SymbioteError as exc:
        if _debug_requested():
            import traceback

            from symbiote_cli.cli.output import REDACT

            sys.stderr.write(REDACT(traceback.format_exc()))
        error_line(exc.message)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one place every unexpected failure becomes one line
        if _debug_requested():
            import traceback

            from symbiote_cli.cli.output import REDACT

            sys.stderr.write(REDACT(traceback.format_exc()))
        error_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
        sys.exit(ExitCode.FAILURE)
    # click returns the code of a typer.Exit when not in standalone mode
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


__all__ = ["UsageError", "app", "main"]
