"""One error hierarchy, caught once at the top of the CLI (see ``cli.main``).

Core code raises these; the CLI prints one red line and exits with ``exit_code``.
Messages must never contain a token: they are built from our own words and from
identifiers (repo names, paths), never from headers or request objects.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Named exit codes, as documented in the README."""

    OK = 0
    FAILURE = 1
    USAGE = 2


class SymbioteError(Exception):
    """Base class: a failure we can explain in one line."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(SymbioteError):
    """Bad flags, bad input or bad configuration: the user can fix it (exit 2)."""

    exit_code = ExitCode.USAGE


class InputError(UsageError):
    """Malformed JSON or an event/request missing required fields."""


class ConfigError(UsageError):
    """A setting is missing or invalid."""


class AuthError(UsageError):
    """The token is missing, rejected or revoked (exit 2: the user must act)."""


class GitHubError(SymbioteError):
    """GitHub answered with an error we could not recover from."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimitedError(GitHubError):
    """GitHub asked us to wait longer than we are willing to block."""

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message, status=403)
        self.retry_at = retry_at


class StorageError(SymbioteError):
    """The storage branch cannot be read or written (names the file or ref)."""


class StorageConflictError(StorageError):
    """A push kept being rejected after the bounded number of retries."""


class SchemaVersionError(StorageError):
    """The storage branch was written by a newer Symbiote."""


class SupersededError(SymbioteError):
    """Another session for the same user took over; this poller must stop cleanly."""

    exit_code = ExitCode.OK


class SignatureError(SymbioteError):
    """A signed request or callback did not verify."""

    exit_code = ExitCode.USAGE
