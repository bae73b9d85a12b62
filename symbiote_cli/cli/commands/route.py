"""``symbiote route``: who handles each event, and why, as ``poll`` would decide."""

from __future__ import annotations

from typing import Annotated

import typer

from symbiote_cli.cli.commands import common


def route(
    source: Annotated[str | None, typer.Argument(help="Event JSON file, or - for stdin.", show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event.")] = False,
    user: Annotated[str | None, typer.Option(help="Whose feed the events come from \\[default: the actor].")] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="No network: the registry cached on the storage branch only.")
    ] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Print who handles each event — kernel, app, user or ignore — and why, as `poll` would.

    Uses the kernel registry cached on the storage branch. With a token it looks up the repos the
    cache lacks, as `poll` does, and caches the answers there. With --offline, or without a token
    (a warning says so), it reads the cache only: a repo it cannot answer for reads
    "kernel status unknown offline" in the reason.
    Reads one event, a JSON array of events or JSON lines.
    Example: `symbiote route event.json --json`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.core.inputs import parse_events, read_text  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import route_events  # noqa: PLC0415 - lazy: --help stays fast

    events = parse_events(read_text(source))
    for decision in route_events(settings, events, user=user, offline=offline):
        if json_out:
            emit_json(decision.model_dump(mode="json"))
        else:
            emit(f"{decision.event_id} {decision.type} {decision.repo} -> {decision.route.value}: {decision.reason}")
