"""``symbiote doctor``: the checks of ``wiring.doctor``, as a table or JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from symbiote_cli.cli.commands import common
from symbiote_cli.core.errors import SymbioteError

if TYPE_CHECKING:
    from rich.console import Console

    from symbiote_cli.wiring.doctor import Check


def doctor(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object with every check.")] = False,
    storage_repo: common.StorageRepoOpt = None,
    storage_branch: common.StorageBranchOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Check the token, private events, storage branch, Actions in the fork, worker and rules file.

    Each check that fails says how to fix it; exit 0 only when none fails.
    Example: `GH_PAT=... SYMBIOTE_REPO=you/symbiote symbiote doctor`
    """
    settings = common.settings(debug, storage_repo=storage_repo, storage_branch=storage_branch)
    from symbiote_cli.cli.output import emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring.doctor import Status, json_report, run_doctor  # noqa: PLC0415 - lazy: --help stays fast

    checks = run_doctor(settings)
    if json_out:
        emit_json(json_report(checks))
    else:
        from rich.console import Console  # noqa: PLC0415 - lazy: --help stays fast

        render_table(checks, Console(highlight=False))
    failed = [c.name for c in checks if c.status is Status.FAIL]
    if failed:
        raise SymbioteError(f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")


def render_table(checks: list[Check], console: Console) -> None:
    """The checks as a table, fixes under each check that did not pass."""
    from rich.markup import escape  # noqa: PLC0415 - lazy: --help stays fast
    from rich.table import Table  # noqa: PLC0415 - lazy: --help stays fast

    from symbiote_cli.core.redaction import REDACT  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring.doctor import Status, all_passed  # noqa: PLC0415 - lazy: --help stays fast

    style = {Status.PASS: "green", Status.WARN: "yellow", Status.FAIL: "bold red", Status.SKIP: "dim"}
    table = Table(title="symbiote doctor", title_justify="left", show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail and fix", overflow="fold")
    for check in checks:
        text = escape(REDACT(check.detail))
        if check.fix and check.status is not Status.PASS:
            text += f"\n[bold]fix:[/] {escape(REDACT(check.fix))}"
        table.add_row(check.name, f"[{style[check.status]}]{check.status.value}[/]", text)
    console.print(table)
    if all_passed(checks):
        console.print("[green]all checks passed[/]")
