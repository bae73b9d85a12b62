"""Configuration: environment, .env and the seed's .dev.vars; flags override; secrets stay secret."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import AliasChoices

from symbiote_cli.core.errors import ConfigError, ExitCode
from symbiote_cli.settings import LogLevel, Settings, load_settings
from symbiote_cli.wiring import make_client

TOKEN = "ghp_canary_settings_0123456789"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".dev.vars.example"
# An assignment, active or commented out: "NAME=value" or "# NAME=value".
ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GH_", "GITHUB_")) or name == "LOG_LEVEL":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.api_url == "https://api.github.com"
    assert settings.storage_branch == "__STORAGE__"
    assert settings.interval == 60
    assert settings.token_source is None
    with pytest.raises(ConfigError, match="set GH_PAT"):
        settings.token()


def test_dev_vars_and_dotenv_files(clean_env: Path) -> None:
    (clean_env / ".dev.vars").write_text(f"GH_PAT={TOKEN}\nSYMBIOTE_INTERVAL=90\n", encoding="utf-8")
    (clean_env / ".env").write_text("SYMBIOTE_KERNEL_REPOS=a/b, c/d\nGITHUB_API_URL=https://ghe.example/api/v3/\n")
    settings = load_settings()
    assert settings.token() == TOKEN
    assert settings.interval == 90
    assert settings.kernel_repos == ["a/b", "c/d"]
    assert settings.api_url == "https://ghe.example/api/v3"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMBIOTE_INTERVAL", "90")
    assert load_settings(interval=15).interval == 15
    assert load_settings(interval=None).interval == 90


def test_github_token_fallback_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.token_source == "GITHUB_TOKEN"
    assert settings.token() == TOKEN
    monkeypatch.setenv("GH_PAT", "ghp_other_0000")
    assert load_settings().token_source == "GH_PAT"


def test_github_token_fallback_warns(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with caplog.at_level("WARNING"):
        make_client(load_settings())
    assert "private events are invisible" in caplog.text


def test_secrets_never_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GH_PAT", TOKEN)
    monkeypatch.setenv("SYMBIOTE_STORAGE_KEY", "not-a-fernet-key-but-secret")
    settings = load_settings()
    assert TOKEN not in repr(settings)
    assert TOKEN in settings.secrets()
    monkeypatch.setenv("SYMBIOTE_INTERVAL", "soon")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "interval" in str(info.value)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SYMBIOTE_STORAGE_BRANCH", "bad..name"),
        ("SYMBIOTE_STORAGE_BRANCH", "with space"),
        ("GITHUB_API_URL", "ftp://x"),
        ("SYMBIOTE_WRITES_PER_MINUTE", "200"),
        ("SYMBIOTE_INTERVAL", "0"),
    ],
)
def test_invalid_values_are_config_errors(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError):
        load_settings()


# -- LOG_LEVEL, as the seed's configuration names it --------------------------------------------------


def test_log_level_is_read_bare_or_prefixed(monkeypatch: pytest.MonkeyPatch, clean_env: Path) -> None:
    assert load_settings().log_level is LogLevel.INFO
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level is LogLevel.DEBUG
    monkeypatch.setenv("SYMBIOTE_LOG_LEVEL", "WARNING")  # the prefixed name wins when both are set
    assert load_settings().log_level is LogLevel.WARNING
    monkeypatch.delenv("SYMBIOTE_LOG_LEVEL")
    monkeypatch.delenv("LOG_LEVEL")
    (clean_env / ".dev.vars").write_text("LOG_LEVEL=ERROR\n", encoding="utf-8")
    assert load_settings().log_level is LogLevel.ERROR


@pytest.mark.parametrize("name", ["LOG_LEVEL", "SYMBIOTE_LOG_LEVEL"])
def test_a_bad_log_level_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "LOUD")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "LOG_LEVEL" in message
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in message
    assert "\n" not in message


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a clean environment, without a token (``route`` then reads its cache only)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SYMBIOTE_", "GH_", "GITHUB_", "GIT_"))}
    base.pop("LOG_LEVEL", None)
    event = '{"id": "1", "type": "PushEvent", "actor": {"login": "octo"}, "repo": {"name": "octo/hello"}}'
    return subprocess.run(
        [sys.executable, "-m", "symbiote_cli", *args],
        cwd=tmp_path,
        env={**base, "HOME": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200", **env},
        input=event,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_log_level_debug_shows_debug_lines(tmp_path: Path) -> None:
    quiet = _cli(tmp_path, "route", "-")
    assert quiet.returncode == 0, quiet.stderr
    assert "DEBUG symbiote" not in quiet.stderr
    for name in ("LOG_LEVEL", "SYMBIOTE_LOG_LEVEL"):
        loud = _cli(tmp_path, "route", "-", **{name: "DEBUG"})
        assert loud.returncode == 0, loud.stderr
        assert "DEBUG symbiote.wiring: kernel registry" in loud.stderr
    # The same level read from the seed's .dev.vars; and a failure then shows its traceback.
    (tmp_path / ".dev.vars").write_text("LOG_LEVEL=DEBUG\n", encoding="utf-8")
    from_file = _cli(tmp_path, "route", "-")
    assert "DEBUG symbiote.wiring" in from_file.stderr
    failed = _cli(tmp_path, "route", "missing.json")
    assert failed.returncode == ExitCode.USAGE
    assert "Traceback" in failed.stderr


def test_a_bad_log_level_exits_2_with_one_line(tmp_path: Path) -> None:
    for name in ("LOG_LEVEL", "SYMBIOTE_LOG_LEVEL"):
        done = _cli(tmp_path, "route", "-", **{name: "LOUD"})
        assert done.returncode == ExitCode.USAGE, done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr
        assert "LOG_LEVEL" in done.stderr
        assert done.stdout == ""


# -- .dev.vars.example stays in step with Settings --------------------------------------------------


def _env_names(name: str) -> tuple[str, ...]:
    """The variables a Settings field is read from (its aliases, else the prefixed field name)."""
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    if isinstance(alias, str):
        return (alias,)
    return (f"SYMBIOTE_{name.upper()}",)


def _example_assignments() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line)
        if match:
            found[match.group(2)] = match.group(3)
    return found


def test_dev_vars_example_names_every_setting_and_nothing_else() -> None:
    named = _example_assignments()
    missing = [field for field in Settings.model_fields if not set(_env_names(field)) & set(named)]
    assert not missing, f".dev.vars.example lacks the settings {missing}"
    known = {env for field in Settings.model_fields for env in _env_names(field)}
    unknown = sorted(set(named) - known)
    assert not unknown, f".dev.vars.example names variables Settings does not read: {unknown}"
    assert "GH_PAT" in named
    assert "LOG_LEVEL" in named


def test_dev_vars_example_has_a_comment_for_every_setting() -> None:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if ASSIGNMENT.match(line):
            above = lines[number - 1] if number else ""
            assert above.startswith("# "), f"no comment above: {line}"
            assert not ASSIGNMENT.match(above), f"no comment above: {line}"


def test_dev_vars_example_works_as_written(clean_env: Path) -> None:
    """Copied to .dev.vars as the README says, it loads; so does every example value uncommented."""
    text = EXAMPLE.read_text(encoding="utf-8")
    (clean_env / ".dev.vars").write_text(text, encoding="utf-8")
    assert load_settings().log_level is LogLevel.INFO
    active = [f"{name}={value}" for name, value in _example_assignments().items() if value]
    (clean_env / ".dev.vars").write_text("\n".join(active) + "\n", encoding="utf-8")
    settings = load_settings()
    defaults = Settings.model_construct()
    for field in ("interval", "storage_branch", "registry_ttl", "writes_per_minute", "http_timeout", "max_pages"):
        assert getattr(settings, field) == getattr(defaults, field), field
