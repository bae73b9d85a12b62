"""The ``symbiote`` command line: ``app`` composes one module per command group (``commands/``).

Every failure is a ``SymbioteError`` raised by the core and turned here, once,
into one red line on stderr and a named exit code (0 ok, 1 failure, 2 usage,
configuration or input error). ``--debug`` or ``LOG_LEVEL=DEBUG`` (also
``SYMBIOTE_LOG_LEVEL``) shows tracebacks.
"""

from __future__ import annotations

import sys
import traceback
from typing import Annotated

import click
import typer

from symbiote_cli import __version__
from symbiote_cli.cli.commands import act, common, doctor, poll, route, rules, serve, store
from symbiote_cli.core.errors import ExitCode, SymbioteError, UsageError
from symbiote_cli.core.redaction import REDACT

app = typer.Typer(
    name="symbiote",
    help="Symbiote: a proactive GitHub agent that polls your events and acts on your behalf.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


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


app.command()(poll.poll)
app.command()(route.route)
app.command()(act.act)
app.command()(serve.serve)
app.command()(doctor.doctor)
app.add_typer(store.app, name="store")
app.add_typer(rules.app, name="rules")


def main() -> None:
    """Entry point: run the app, turn every failure into one line and an exit code."""

    def error_line(message: str) -> None:
        from symbiote_cli.cli.output import error_line as show  # noqa: PLC0415 - lazy: --help stays fast

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
        if common.debug_requested():
            sys.stderr.write(REDACT(traceback.format_exc()))
        error_line(exc.message)
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the one place every unexpected failure becomes one line
        if common.debug_requested():
            sys.stderr.write(REDACT(traceback.format_exc()))
        error_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)")
        sys.exit(ExitCode.FAILURE)
    # click returns the code of a typer.Exit when not in standalone mode
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


__all__ = ["UsageError", "app", "main"]
