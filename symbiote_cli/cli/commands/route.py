"""``symbiote route``: who handles each event, and why, as ``poll`` would decide."""

from __future__ import annotations

from typing import Annotated

import typer

from symbiote_cli.cli.commands import common


def route(
    source: Annotated[
        str | None,
        typer.Argument(help="JSON file of events and/or notifications, or - for stdin.", show_default=False),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event or notification.")] = False,
    user: Annotated[
        str | None,
        typer.Option(
            help="Whose feed the events come from \\[default: the actor]; needed for notifications (no actor)."
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="No network: the registry cached on the storage branch only.")
    ] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Print who handles each item — kernel, app, user or ignore — and why, as `poll` would.

    Uses the kernel registry cached on the storage branch. With a token it looks up the repos the
    cache lacks, as `poll` does, and caches the answers there. With --offline, or without a token
    (a warning says so), it reads the cache only: a repo it cannot answer for reads
    "kernel status unknown offline" in the reason.
    Items are events and notifications: one, a JSON array of them or JSON lines, mixed as you like.
    A notification names no actor: give --user (or SYMBIOTE_USER). Titles are never printed.
    Example: `symbiote route event.json --json`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.core.inputs import parse_items, read_text  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.core.models import Notification  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import route_events  # noqa: PLC0415 - lazy: --help stays fast

    items = parse_items(read_text(source))
    decisions = route_events(settings, items, user=user, offline=offline)
    for item, decision in zip(items, decisions, strict=True):
        if json_out:
            emit_json(decision.model_dump(mode="json"))
            continue
        what = f"{decision.type} {decision.repo}"
        if isinstance(item, Notification):
            # Its reason and subject type, never its title (a private repository's title stays private).
            where = f"{item.repo_name}#{item.issue_number}" if item.issue_number else item.repo_name
            what = f"notification {item.reason} on {item.subject_type} {where}"
        emit(f"{decision.event_id} {what} -> {decision.route.value}: {decision.reason}")
