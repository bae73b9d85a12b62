"""Configuration: environment, .env and the seed's .dev.vars; flags override; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbiote_cli.errors import ConfigError
from symbiote_cli.settings import load_settings

TOKEN = "ghp_canary_settings_0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith(("SYMBIOTE_", "GH_", "GITHUB_")):
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
    from symbiote_cli.runner import make_client

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
