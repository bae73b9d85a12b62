"""What every command shares: the common options, the settings and the debug switch."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from symbiote_cli.core.errors import SymbioteError

if TYPE_CHECKING:
    from symbiote_cli.settings import Settings

StorageRepoOpt = Annotated[
    Path | None, typer.Option("--storage-repo", help="Fork checkout holding the storage branch \\[default: .]")
]
StorageBranchOpt = Annotated[
    str | None, typer.Option("--storage-branch", help="Storage branch \\[default: __STORAGE__]")
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")]

_DEBUG = False


def settings(debug: bool = False, **overrides: Any) -> Settings:
    """The settings with the command's overrides; secrets registered for masking; logging set up."""
    from symbiote_cli.cli.output import setup_logging  # noqa: PLC0415 - pydantic and rich load per command
    from symbiote_cli.core.redaction import REDACT  # noqa: PLC0415 - per command, see above
    from symbiote_cli.settings import LogLevel, load_settings  # noqa: PLC0415 - per command, see above

    global _DEBUG  # noqa: PLW0603 - one process-wide switch read by main()
    loaded = load_settings(**overrides)
    if debug or loaded.log_level is LogLevel.DEBUG:
        _DEBUG = True
    for secret in loaded.secrets():
        REDACT.add(secret)
    setup_logging(LogLevel.DEBUG if _DEBUG else loaded.log_level)
    return loaded


def debug_requested() -> bool:
    """``--debug``, or a DEBUG level read the way the settings read it (``LOG_LEVEL``, ``.dev.vars``...)."""
    if _DEBUG or "--debug" in sys.argv:
        return True
    from symbiote_cli.settings import LogLevel, load_settings  # noqa: PLC0415 - pydantic only on failure

    try:
        return load_settings().log_level is LogLevel.DEBUG
    except Exception:  # noqa: BLE001 - deciding whether to show a traceback must never fail itself
        return False


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def mask_early() -> None:
    """``::add-mask::`` every secret before anything else is printed."""
    from symbiote_cli.cli import gha  # noqa: PLC0415 - pydantic loads in Actions only
    from symbiote_cli.settings import load_settings  # noqa: PLC0415 - per command, see settings()

    names = ("GH_PAT", "GITHUB_TOKEN", "SYMBIOTE_STORAGE_KEY", "SYMBIOTE_CALLBACK_SECRET", "SYMBIOTE_WORKER_TOKEN")
    secrets = [os.environ.get(name, "") for name in names]
    with contextlib.suppress(SymbioteError):
        secrets.extend(load_settings().secrets())
    gha.add_masks(secrets)
