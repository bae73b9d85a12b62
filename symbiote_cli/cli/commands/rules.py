"""``symbiote rules``: check and explain the rules file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from symbiote_cli.cli.commands import common
from symbiote_cli.core.errors import UsageError

app = typer.Typer(
    help="Check and explain the rules that decide what Symbiote does (`.github/symbiote.yml`).",
    no_args_is_help=True,
)


@app.command("check")
def rules_check(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Rules file \\[default: SYMBIOTE_CONFIG, else .github/symbiote.yml in the fork checkout].",
            show_default=False,
        ),
    ] = None,
    storage_repo: common.StorageRepoOpt = None,
    debug: common.DebugOpt = False,
) -> None:
    """Validate a rules file: exit 0, or 2 with one `file:line: field: problem` line per problem.

    Example: `symbiote rules check .github/symbiote.yml`
    """
    settings = common.settings(debug, storage_repo=storage_repo)
    from symbiote_cli.cli.output import emit  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.core.rulesfile import RulesFileError, load_rules_file  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import rules_path  # noqa: PLC0415 - lazy: --help stays fast

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


@app.command("explain")
def rules_explain(
    source: Annotated[
        str | None,
        typer.Argument(
            help="JSON file of events (events API shape) and/or notifications (GET /notifications' shape),"
            " or - for stdin.",
            show_default=False,
        ),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="Rules file \\[default: SYMBIOTE_CONFIG, else .github/symbiote.yml, else built-in]."
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            help="Whose feed the event comes from \\[default: the actor]; needed for notifications (no actor)."
        ),
    ] = None,
    storage_repo: common.StorageRepoOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per event or notification.")] = False,
    debug: common.DebugOpt = False,
) -> None:
    """Show which rule matches an event or notification and what it would do. Plans only: no network, no writes.

    Reads one event or notification, a JSON array of them or JSON lines, mixed as you like.
    A notification names no actor: give --user (or SYMBIOTE_USER).
    Example: `symbiote rules explain event.json --rules examples/deploy.yml`
    Example: `symbiote rules explain n.json --user octo --rules examples/notifications.yml`
    """
    settings = common.settings(debug, storage_repo=storage_repo)
    from symbiote_cli.cli.output import emit, emit_json  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.core.inputs import parse_items, read_text  # noqa: PLC0415 - lazy: --help stays fast
    from symbiote_cli.wiring import explain_events  # noqa: PLC0415 - lazy: --help stays fast

    for explained in explain_events(settings, parse_items(read_text(source)), user=user, rules=rules):
        if json_out:
            emit_json(explained.as_json())
        else:
            for line in explained.lines():
                emit(line)
