"""``symbiote store``: inspect (and prune) the storage branch."""

from __future__ import annotations

from typing import Annotated

import typer

from symbiote_cli.cli.commands import common

app = typer.Typer(help="Inspect the storage branch (`__STORAGE__`).", no_args_is_help=True)


@app.command("events")
def store_events(
    user: Annotated[str | None, typer.Option(help="Whose events \\[default: SYMBIOTE_USER, else all users].")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """List processed events (and notifications), newest first.

    Example: `symbiote store events --user octo --json`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import store_events  # noqa: PLC0415 - lazy: --help stays fast

    for record in store_events(settings, user or settings.user, limit=limit):
        if json_out:
            emit_json(record.model_dump(mode="json", exclude_none=True))
        else:
            acts = ", ".join(f"{a.kind.value} {a.status.value}" for a in record.actions) or "no action"
            kind = f"{record.type} {record.notification}" if record.notification else record.type
            emit(f"{record.event_id} {kind} {record.repo} -> {record.route.value}: {acts}")


@app.command("get")
def store_get(
    path: Annotated[str, typer.Argument(help="File on the storage branch, e.g. users/octo/cursor.json")],
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Print one JSON file of the storage branch.

    Example: `symbiote store get users/octo/cursor.json`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import store_get  # noqa: PLC0415 - lazy: --help stays fast

    emit(store_get(settings, path))


@app.command("log")
def store_log(
    limit: Annotated[int, typer.Option(min=1, help="How many commits.")] = 20,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Show the storage branch's recent commits.

    Example: `symbiote store log --limit 5`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import store_log  # noqa: PLC0415 - lazy: --help stays fast

    for line in store_log(settings, limit):
        emit(line)


@app.command("gc")
def store_gc(
    retention_days: Annotated[int | None, typer.Option(min=1, help="Keep this many days \\[default: 30].")] = None,
    compact: Annotated[
        bool,
        typer.Option(
            "--compact", help="Then replace the branch's history by one commit holding its current files."
        ),
    ] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Prune ended sessions and processed-event logs older than the retention period, and mark
    sessions that went silent as expired (as the worker's gc does).

    Example: `symbiote store gc --retention-days 30`
    """
    settings = common.settings(
        debug, storage_repo=storage_repo, storage_branch=storage_branch, retention_days=retention_days
    )
    from symbiote_cli.cli.output import emit  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import store_gc  # noqa: PLC0415 - lazy: --help stays fast

    removed = store_gc(settings, compact=compact)
    emit(f"removed {len(removed)} files" + (": " + ", ".join(removed[:20]) if removed else ""))
