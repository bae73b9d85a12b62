"""``symbiote act``: execute one action request, the same code path ``poll`` uses."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from symbiote_cli.cli.commands import common
from symbiote_cli.core.errors import ExitCode


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
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    debug: common.DebugOpt = False,
) -> None:
    """Execute one action request — the same code path `poll` uses.

    Example:
    `echo '{"kind":"comment","repo":"octo/hello","issue_number":1,"body":"hi","idempotency_key":"k1"}'
    | symbiote act -`
    """
    if common.in_actions():
        common.mask_early()
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import act_from_inputs, act_once  # noqa: PLC0415 - lazy: --help stays fast

    if inputs_env is not None:
        outcome = act_from_inputs(
            settings, inputs_env, dict(os.environ), dry_run=dry_run, callback_url=callback_url
        )
    else:
        from symbiote_cli.core.inputs import parse_request, read_text  # noqa: PLC0415 - lazy: --help stays fast

        request = parse_request(read_text(source))
        outcome = act_once(settings, request, state_id=state_id, dry_run=dry_run, callback_url=callback_url)
    result = outcome.result
    if json_out:
        emit_json({"state_id": outcome.state_id, **result.model_dump(mode="json")})
    else:
        url = f" {result.url}" if result.url else ""
        emit(f"{result.kind.value} {result.repo}: {result.status.value} ({result.detail}){url}")
    if result.status.value == "failed":
        raise typer.Exit(ExitCode.FAILURE)
