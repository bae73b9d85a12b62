"""Configuration: one pydantic-settings model read from the environment, ``.env``
and the seed's ``.dev.vars``; command-line flags override it (``Settings.with_overrides``).

Secrets are ``SecretStr`` so that printing or logging a Settings never shows them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from symbiote_cli.core.errors import ConfigError
from symbiote_cli.core.models import Source

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


class WorkerModeSetting(StrEnum):
    """``SYMBIOTE_MODE``: where the worker's sessions poll (unset: actions when SYMBIOTE_REPO is set)."""

    LOCAL = "local"
    ACTIONS = "actions"


class LogLevel(StrEnum):
    """The levels of Python's ``logging`` a user may ask for."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


# The seed's configuration names it bare; the prefixed name wins when both are set.
LOG_LEVEL_NAMES = ("SYMBIOTE_LOG_LEVEL", "LOG_LEVEL")


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every knob Symbiote has; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="SYMBIOTE_",
        env_file=(".env", ".dev.vars"),
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    gh_pat: SecretStr | None = Field(default=None, validation_alias=AliasChoices("GH_PAT", "SYMBIOTE_GH_PAT"))
    github_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("GITHUB_TOKEN"))
    api_url: str = Field(default=DEFAULT_API_URL, validation_alias=AliasChoices("GITHUB_API_URL", "SYMBIOTE_API_URL"))

    user: str | None = None
    interval: float = Field(default=60.0, gt=0)
    sources: Annotated[list[Source], NoDecode] = Field(default_factory=lambda: [Source.EVENTS], min_length=1)
    storage_branch: str = "__STORAGE__"
    storage_remote: str | None = None
    storage_repo: Path = Path()
    storage_key: SecretStr | None = None
    log_level: LogLevel = Field(default=LogLevel.INFO, validation_alias=AliasChoices(*LOG_LEVEL_NAMES))
    kernel_repos: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kernel_owners: Annotated[list[str], NoDecode] = Field(default_factory=list)
    registry_ttl: float = Field(default=6 * 3600.0, ge=0)
    app_id: str | None = None
    app_private_key: SecretStr | None = None
    kernel_public_key: str | None = None
    kernel_return: bool = False
    callback_secret: SecretStr | None = None
    worker_token: SecretStr | None = None
    repo: str | None = None
    mode: WorkerModeSetting | None = None
    fork_name: str = "symbiote"
    worker_url: str | None = None
    worker_docs: bool = False
    oidc_issuer: str = DEFAULT_OIDC_ISSUER
    kernel_allowed_senders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    kernel_scope: Annotated[list[str], NoDecode] = Field(default_factory=list)
    retention_days: int = Field(default=30, ge=1)
    heartbeat_interval: float = Field(default=900.0, gt=0)
    writes_per_minute: int = Field(default=60, ge=1, le=80)
    writes_per_hour: int = Field(default=450, ge=1, le=500)
    max_pages: int = Field(default=3, ge=1, le=3)
    push_retries: int = Field(default=5, ge=0)
    config: Path | None = None
    http_timeout: float = Field(default=15.0, gt=0)
    http_retries: int = Field(default=4, ge=0, le=10)
    # PyGithub's own throttle; GitHub asks for a second between content-creating requests
    # (https://docs.github.com/rest/using-the-rest-api/best-practices-for-using-the-rest-api).
    seconds_between_requests: float = Field(default=0.25, ge=0)
    seconds_between_writes: float = Field(default=1.0, ge=0)
    # Issue 14 (bounded history): the worker's periodic gc also compacts the storage branch's history.
    compact_history: bool = False

    @field_validator("kernel_repos", "kernel_owners", "kernel_allowed_senders", "kernel_scope", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: Any) -> Any:
        items = _split_list(value)
        if items == []:
            return [Source.EVENTS]  # an empty SYMBIOTE_SOURCES (an unset Actions variable) means the default
        if isinstance(items, list):
            known = {source.value for source in Source}
            for item in items:
                if str(item).strip().lower() not in known:
                    choices = " or ".join(sorted(known))
                    raise ValueError(f"unknown source {str(item)[:40]!r}: use {choices}, comma-separated")
            return list(dict.fromkeys(str(item).strip().lower() for item in items))
        return items

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: Any) -> Any:
        if isinstance(value, LogLevel):
            return value
        text = str(value).strip().upper()
        if text not in LogLevel.__members__:
            # Never echo the value: whatever was pasted there may be a secret.
            raise ValueError(f"must be one of {', '.join(LogLevel)} (set by {' or '.join(LOG_LEVEL_NAMES)})")
        return LogLevel(text)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        value = value.rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("GITHUB_API_URL must start with http:// or https://")
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower() or None
        return value

    @field_validator("worker_url", mode="before")
    @classmethod
    def _worker_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().rstrip("/") or None
            if value is not None and not value.startswith(("http://", "https://")):
                raise ValueError("SYMBIOTE_WORKER_URL must start with http:// or https://")
        return value

    @field_validator("fork_name")
    @classmethod
    def _fork_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", value) or value in {".", ".."}:
            raise ValueError("SYMBIOTE_FORK_NAME must be a repository name")
        return value

    @field_validator("storage_branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        bad = set(" ~^:?*[\\") | {".."}
        if not value or any(b in value for b in bad) or value.startswith(("-", "/")) or value.endswith((".lock", "/")):
            raise ValueError(f"not a valid branch name: {value!r}")
        return value

    @property
    def token_source(self) -> str | None:
        """Which variable the token came from (never the token itself)."""
        if self.gh_pat is not None and self.gh_pat.get_secret_value():
            return "GH_PAT"
        if self.github_token is not None and self.github_token.get_secret_value():
            return "GITHUB_TOKEN"
        return None

    def token(self) -> str:
        """The user's token; raises ConfigError saying which variable to set."""
        for secret in (self.gh_pat, self.github_token):
            if secret is not None and secret.get_secret_value():
                return secret.get_secret_value()
        raise ConfigError("no GitHub token: set GH_PAT to a personal access token (see README 'Tokens')")

    def secrets(self) -> list[str]:
        """Every secret value configured, for masking in output."""
        values = [
            s.get_secret_value()
            for s in (
                self.gh_pat,
                self.github_token,
                self.storage_key,
                self.app_private_key,
                self.callback_secret,
                self.worker_token,
            )
            if s is not None
        ]
        return [v for v in values if v]

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply command-line flags (``None`` means "not given") and re-validate."""
        data = self.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming the field and the problem, never the (possibly secret) value."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        parts.append(f"{loc}: {err.get('msg', 'invalid').removeprefix('Value error, ')}")
    return "; ".join(parts)


def load_settings(**overrides: Any) -> Settings:
    """Read the environment and dotenv files, then apply flag overrides."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(f"bad configuration: {describe_validation_error(exc)}") from None
    return settings.with_overrides(**overrides) if overrides else settings
