"""Keeping private repositories private on a branch that is usually public.

The storage branch lives in the user's fork, which anyone can read. Records of events
in private repositories are therefore stored redacted: the repo name becomes a stable,
non-reversible key, free text and URLs are dropped, and - when ``SYMBIOTE_STORAGE_KEY``
is set - the clear record is kept Fernet-encrypted in ``sealed``.

``cryptography`` is imported lazily: most commands never seal anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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

KEYED_PREFIX = "private-k"
NAMES_LABEL = b"symbiote/private-repo-names/v1"
"""The fixed label HMAC'd with the storage key to derive the key that names private repos."""

# Unkeyed (``private-`` + 16 hex of sha256) or keyed (``private-k`` + 32 hex of an HMAC).
_REPO_KEY_RE = re.compile(r"^private-(?:[0-9a-f]{16}|k[0-9a-f]{32})$")
_DIGEST_RE = re.compile(r"^(?:h-[0-9a-f]{16}|hk-[0-9a-f]{32})$")


def names_key(fernet_key: str) -> bytes:
    """The key that names private repos: HMAC-SHA256 of a fixed label under one storage (Fernet) key.

    Derived, never the Fernet key itself, so a name key can never decrypt a sealed record.
    """
    try:
        raw = base64.urlsafe_b64decode(fernet_key.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ConfigError(f"{KEY_VARIABLE}: a key is not url-safe base64") from None
    return hmac.new(raw, NAMES_LABEL, hashlib.sha256).digest()


def repo_key(full_name: str, names: bytes | None = None) -> str:
    """A stable id for a private repo that does not reveal its name (GitHub names are case-insensitive).

    With ``names`` (``Sealer.names``, from ``SYMBIOTE_STORAGE_KEY``) it is a keyed hash: a guessed
    name cannot be confirmed without the key. Without, it is an unsalted hash that anyone can
    confirm a guess against (README, "What the public branch reveals").
    """
    name = full_name.lower().encode("utf-8")
    if names is None:
        return REPO_KEY_PREFIX + hashlib.sha256(name).hexdigest()[:16]
    return KEYED_PREFIX + hmac.new(names, name, hashlib.sha256).hexdigest()[:32]


def is_repo_key(value: str) -> bool:
    """True when ``value`` is already a ``repo_key``, keyed or not (so redaction is idempotent)."""
    return bool(_REPO_KEY_RE.match(value))


def is_keyed(value: str) -> bool:
    """True for a keyed ``repo_key`` or digest (written with a storage key)."""
    return value.startswith((KEYED_PREFIX, "hk-"))


def _digest(value: str, names: bytes | None = None) -> str:
    """Hide an identifier that may embed the repo name, while keeping equal ones equal (keyed as ``repo_key``)."""
    if _DIGEST_RE.match(value):
        return value
    if names is None:
        return "h-" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]
    return "hk-" + hmac.new(names, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


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
        # Names follow the first (encrypting) key: rotating it re-keys names (docs: README, privacy).
        self.names: bytes = names_key(keys[0])

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


def _redact_action(action: ActionResult, names: bytes | None) -> ActionResult:
    return action.model_copy(
        update={
            "repo": action.repo if is_repo_key(action.repo) else repo_key(action.repo, names),
            "idempotency_key": _digest(action.idempotency_key, names),
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
    names = sealer.names if sealer is not None else None
    return record.model_copy(
        update={
            "repo": repo_key(record.repo, names),
            "reason": REDACTED,
            "actions": [_redact_action(action, names) for action in record.actions],
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


def rekey_record(record: ProcessedEvent, sealer: Sealer) -> ProcessedEvent:
    """A stored private record with its names keyed by ``sealer`` (recomputed from the sealed clear record).

    Records stored without a key hold no clear name to re-key from; they are returned unchanged.
    Idempotent: a record already keyed with this key comes back equal.
    """
    if not record.private or record.sealed is None:
        return record
    clear = reveal_record(record, sealer)
    rekeyed = protect_record(clear.model_copy(update={"sealed": None}), sealer)
    # Keep the stored token: re-sealing would change the bytes on every run (Fernet has a random IV).
    return rekeyed.model_copy(update={"sealed": record.sealed})
