"""Secret masking shared by every layer that writes text out of the process.

``REDACT`` is the process-wide list of secrets: the wiring adds tokens as it
builds clients, and the CLI, the worker and the flows mask what they print or
return with it, as a second line of defence behind messages built from our own
words.
"""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


class Redactor:
    """Replaces every configured secret with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4 and secret not in self.secrets:
            self.secrets = sorted([*self.secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


REDACT = Redactor()
