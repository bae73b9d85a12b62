"""Private repositories never appear in clear on the (public) storage branch."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from symbiote_cli.core.errors import ConfigError, StorageError
from symbiote_cli.core.models import ActionKind, ActionResult, ActionStatus, ProcessedEvent, Route
from symbiote_cli.core.privacy import Sealer, generate_key, is_repo_key, protect_record, repo_key, reveal_record
from symbiote_cli.settings import Settings
from symbiote_cli.storage.branch import Storage, StorageView
from symbiote_cli.wiring import make_sealer

SECRET_REPO = "Acme-Corp/secret-plans"
SECRET_TITLE = "Quarterly layoffs list"
SECRET_BODY = "Do not share: the merger with Initech"


def private_record(event_id: str = "1234567890") -> ProcessedEvent:
    return ProcessedEvent(
        event_id=event_id,
        type="IssueCommentEvent",
        repo=SECRET_REPO,
        route=Route.USER,
        reason=f"mention in '{SECRET_TITLE}': {SECRET_BODY}",
        created_at="2026-01-01T10:00:00Z",
        processed_at=1_767_261_600.0,
        private=True,
        actions=[
            ActionResult(
                idempotency_key=f"comment:{SECRET_REPO.replace('/', '.')}:12:{event_id}",
                kind=ActionKind.COMMENT,
                repo=SECRET_REPO,
                status=ActionStatus.DONE,
                detail=f"replied to {SECRET_BODY}",
                url=f"https://github.com/{SECRET_REPO}/issues/12#issuecomment-1",
                status_code=201,
                at=1_767_261_601.0,
            )
        ],
    )


def settings_with_key(value: str | None) -> Settings:
    return Settings(storage_key=SecretStr(value) if value is not None else None)


# ---------------------------------------------------------------------------- repo keys


def test_repo_key_is_stable_case_insensitive_and_opaque() -> None:
    key = repo_key(SECRET_REPO)
    assert key == repo_key(SECRET_REPO.lower()) == repo_key(SECRET_REPO.upper())
    assert key.startswith("private-")
    assert len(key) == len("private-") + 16
    assert is_repo_key(key)
    assert "acme" not in key.lower()
    assert "secret" not in key.lower()
    assert repo_key("acme-corp/other") != key
    assert not is_repo_key(SECRET_REPO)


# ---------------------------------------------------------------------------- sealing


def test_seal_and_unseal_round_trip() -> None:
    sealer = Sealer([generate_key()])
    token = sealer.seal({"repo": SECRET_REPO, "n": [1, 2], "é": None})
    assert SECRET_REPO not in token
    assert sealer.unseal(token) == {"repo": SECRET_REPO, "n": [1, 2], "é": None}
    assert sealer.key_count == 1


def test_wrong_key_is_a_clear_error_not_silent_loss() -> None:
    token = Sealer([generate_key()]).seal({"x": 1})
    other = Sealer([generate_key()])
    with pytest.raises(StorageError) as info:
        other.unseal(token, where="users/a/events/2026-01-01.json")
    assert str(info.value) == (
        "SYMBIOTE_STORAGE_KEY cannot decrypt users/a/events/2026-01-01.json; "
        "was the key rotated? keep the old key after the new one"
    )
    with pytest.raises(StorageError, match="cannot decrypt"):
        other.unseal("not a token at all")
    with pytest.raises(StorageError, match="cannot decrypt"):
        other.rotate(token)


def test_key_rotation_old_then_new_and_old_then_new_only() -> None:
    old, new = generate_key(), generate_key()
    token_old = Sealer.from_string(old).seal({"v": 1})  # type: ignore[union-attr]
    both = Sealer.from_string(f"{new}, {old}")
    assert both is not None
    assert both.key_count == 2
    assert both.unseal(token_old) == {"v": 1}  # old data still readable during rotation
    rotated = both.rotate(token_old)
    fresh = both.seal({"v": 2})
    only_new = Sealer([new])
    assert only_new.unseal(rotated) == {"v": 1}
    assert only_new.unseal(fresh) == {"v": 2}  # the first key encrypts
    with pytest.raises(StorageError, match="keep the old key after the new one"):
        only_new.unseal(token_old)
    with pytest.raises(StorageError):
        Sealer([old]).unseal(rotated)


def test_make_sealer() -> None:
    key = generate_key()
    assert make_sealer(settings_with_key(None)) is None
    assert make_sealer(settings_with_key("")) is None
    assert make_sealer(settings_with_key(" , ")) is None
    sealer = make_sealer(settings_with_key(key))
    assert sealer is not None
    assert sealer.unseal(sealer.seal([1])) == [1]
    two = make_sealer(settings_with_key(f"{generate_key()},{key}"))
    assert two is not None
    assert two.key_count == 2


@pytest.mark.parametrize("bad", ["hunter2-not-a-key", "Zm9v", "ключ", "x" * 44])
def test_invalid_key_names_the_variable_never_the_value(bad: str) -> None:
    good = generate_key()
    with pytest.raises(ConfigError) as info:
        make_sealer(settings_with_key(f"{good},{bad}"))
    message = str(info.value)
    assert "SYMBIOTE_STORAGE_KEY" in message
    assert "key #2" in message
    assert bad not in message
    assert good not in message


# ---------------------------------------------------------------------------- records


def test_public_records_pass_through_unchanged() -> None:
    record = private_record().model_copy(update={"private": False})
    sealer = Sealer([generate_key()])
    assert protect_record(record, sealer) is record
    assert reveal_record(record, sealer) is record


def test_private_record_is_redacted_and_sealed() -> None:
    record = private_record()
    sealer = Sealer([generate_key()])
    safe = protect_record(record, sealer)
    dumped = safe.model_dump_json()
    for secret in ("acme", "secret-plans", "layoffs", "initech"):
        assert secret not in dumped.lower()
    assert safe.repo == repo_key(SECRET_REPO, sealer.names) != repo_key(SECRET_REPO)
    # What the loop needs is kept.
    assert (safe.event_id, safe.type, safe.route, safe.private) == (record.event_id, record.type, Route.USER, True)
    assert (safe.created_at, safe.processed_at) == (record.created_at, record.processed_at)
    action = safe.actions[0]
    assert (action.kind, action.status, action.status_code, action.at) == (
        ActionKind.COMMENT,
        ActionStatus.DONE,
        201,
        record.actions[0].at,
    )
    assert action.url is None
    assert action.repo == safe.repo
    assert safe.sealed is not None
    # The inverse: the original, exactly.
    assert reveal_record(safe, sealer) == record
    # Idempotent: protecting twice changes nothing.
    assert protect_record(safe, sealer) == safe


def test_private_record_without_a_key_is_redacted_only() -> None:
    record = private_record()
    safe = protect_record(record, None)
    assert safe.sealed is None
    assert SECRET_REPO.lower() not in safe.model_dump_json().lower()
    assert reveal_record(safe, None) is safe
    assert reveal_record(safe, Sealer([generate_key()])) is safe


def test_reveal_with_the_wrong_key_is_a_clear_error() -> None:
    safe = protect_record(private_record("99"), Sealer([generate_key()]))
    with pytest.raises(StorageError, match="cannot decrypt the sealed record of event 99"):
        reveal_record(safe, Sealer([generate_key()]))


# ---------------------------------------------------------------------------- on the branch


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("with_key", [True, False])
def test_private_record_never_reaches_the_branch_in_clear(tmp_path: Path, with_key: bool) -> None:
    origin = tmp_path / "origin.git"
    clone = tmp_path / "clone"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(tmp_path, "init", "-q", str(clone))
    git(clone, "remote", "add", "origin", str(origin))
    sealer = Sealer([generate_key()]) if with_key else None
    records = [private_record("1"), private_record("2")]
    day = "users/octocat/events/2026-01-01.json"
    store = Storage(clone)
    store.open()

    def record_events(view: StorageView) -> dict[str, object]:
        existing = view.read_json(day) or []
        return {day: existing + [protect_record(r, sealer).model_dump(mode="json") for r in records]}

    store.update(record_events, "Record 2 events for octocat")
    store.update(lambda _view: {"users/octocat/cursor.json": {"last_event_id": "2"}}, "Move cursor for octocat")
    store.close()

    for repo in (clone, origin):
        history = git(repo, "log", "-p", "--all", "--format=%H %an %s%n%b").lower()
        assert "record 2 events" in history  # the log really is there...
        for secret in ("acme", "secret-plans", "layoffs", "initech", "github.com/"):
            assert secret not in history  # ...and holds nothing of the private repo

    stored = Storage(clone)
    stored_day = stored.read_json(day)
    assert isinstance(stored_day, list)
    saved = [ProcessedEvent.model_validate(item) for item in stored_day]
    stored.close()
    revealed = [reveal_record(item, sealer) for item in saved]
    if with_key:
        assert revealed == records
    else:
        assert all(item.repo == repo_key(SECRET_REPO) and item.sealed is None for item in revealed)
