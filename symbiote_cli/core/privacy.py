"""Keeping private repositories private on a branch that is usually public.

The storage branch lives in the user's fork, which anyone can read. Records of events
in private repositories are therefore stored redacted: the repo name becomes a stable,
non-reversible key, free text and URLs are dropped, and - when ``SYMBIOTE_STORAGE_KEY``
is set - the clear record is kept Fernet-encrypted in ``sealed``.

``cryptography`` is imported lazily: most commands never seal anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from symbiote_cli.core.errors import ConfigError, StorageError
from symbiote_cli.core.models import ActionResult, ProcessedEvent

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_VARIABLE = "SYMBIOTE_STORAGE_KEY"
REPO_KEY_PREFIX = "private-"
REDACTED = "redacted"

_REPO_KEY_RE = re.compile(r"^private-[0-9a-f]{16}$")


def repo_key(full_name: str) -> str:
    """A stable id for a private repo that does not reveal its name (GitHub names are case-insensitive)."""
    return REPO_KEY_PREFIX + hashlib.sha256(full_name.lower().encode("utf-8")).hexdigest()[:16]


def is_repo_key(value: str) -> bool:
    """True when ``value`` is already a ``repo_key`` (so redaction is idempotent)."""
    return bool(_REPO_KEY_RE.match(value))


def _digest(value: str) -> str:
    """Hide an identifier that may embed the repo name, while keeping equal ones equal."""
    return "h-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def generate_key() -> str:
    """A fresh Fernet key, for ``SYMBIOTE_STORAGE_KEY``."""
    from cryptography.fernet import Fernet  # noqa: PLC0415 - cryptography on first seal: route stays light (test_startup)

    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Fernet encryption with rotation: the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[str]) -> None:
        from cryptography.fernet import Fernet, MultiFernet  # noqa: PLC0415 - cryptography on first seal: route stays light (test_startup)

        if not keys:
            raise ConfigError(f"{KEY_VARIABLE} is empty: set it to one or more Fernet keys, comma-separated")
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode("ascii")))
            except (ValueError, TypeError, UnicodeEncodeError):
                # Never echo the value: it is a secret, even when malformed.
                raise ConfigError(
                    f"{KEY_VARIABLE}: key #{position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "generate one with symbiote_cli.privacy.generate_key()"
                ) from None
        self._fernet: MultiFernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_string(cls, value: str) -> Sealer | None:
        """Parse the comma-separated key list; None when it holds no key at all."""
        keys = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
        return cls(keys) if keys else None

    def seal(self, obj: Any) -> str:
        """Encrypt a JSON-serialisable value with the first key."""
        data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._fernet.encrypt(data).decode("ascii")

    def unseal(self, token: str, where: str = "a sealed record") -> Any:
        """Decrypt with any key; failure is a loud error, never silent data loss."""
        from cryptography.fernet import InvalidToken  # noqa: PLC0415 - cryptography on first seal: route stays light (test_startup)

        try:
            data = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise StorageError(self._cannot(where)) from None
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise StorageError(f"{where} decrypted to something that is not JSON") from None

    def rotate(self, token: str, where: str = "a sealed record") -> str:
        """Re-encrypt ``token`` with the first (newest) key."""
        from cryptography.fernet import InvalidToken  # noqa: PLC0415 - cryptography on first seal: route stays light (test_startup)

        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise StorageError(self._cannot(where)) from None

    @staticmethod
    def _cannot(where: str) -> str:
        return f"{KEY_VARIABLE} cannot decrypt {where}; was the key rotated? keep the old key after the new one"


def _redact_action(action: ActionResult) -> ActionResult:
    return action.model_copy(
        update={
            "repo": action.repo if is_repo_key(action.repo) else repo_key(action.repo),
            "idempotency_key": _digest(action.idempotency_key),
            "detail": REDACTED if action.detail else "",
            "url": None,
        }
    )


def is_protected(record: ProcessedEvent) -> bool:
    """True when a private record has already been redacted."""
    return record.private and is_repo_key(record.repo)


def protect_record(record: ProcessedEvent, sealer: Sealer | None) -> ProcessedEvent:
    """The form of ``record`` that may be written to the (public) branch.

    Public records pass through unchanged. Private ones keep only what the loop needs
    (route, event id, type, statuses, timestamps); the clear record is sealed when a key
    is configured, so nothing of a private repo is ever stored in clear.
    """
    if not record.private or is_protected(record):
        return record
    clear = record.model_copy(update={"sealed": None})
    return record.model_copy(
        update={
            "repo": repo_key(record.repo),
            "reason": REDACTED,
            "actions": [_redact_action(action) for action in record.actions],
            "sealed": sealer.seal(clear.model_dump(mode="json")) if sealer is not None else None,
        }
    )


def reveal_record(record: ProcessedEvent, sealer: Sealer | None) -> ProcessedEvent:
    """The clear record when it was sealed and a key is available; else the record as stored."""
    if record.sealed is None or sealer is None:
        return record
    data = sealer.unseal(record.sealed, where=f"the sealed record of event {record.event_id}")
    try:
        return ProcessedEvent.model_validate(data)
    except ValueError:
        raise StorageError(f"the sealed record of event {record.event_id} is not a processed event") from None
