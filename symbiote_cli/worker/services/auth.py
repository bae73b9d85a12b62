"""Who may call the worker: a bearer token or an HMAC signature (``signing``)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from symbiote_cli.core import signing
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError


class AuthMethod(StrEnum):
    BEARER = "bearer"
    SIGNATURE = "signature"


class Auth:
    """Checks ``Authorization: Bearer $SYMBIOTE_WORKER_TOKEN`` or a signature, each signature once."""

    def __init__(self, ctx: WorkerContext, replay: signing.ReplayCache | None = None) -> None:
        self.ctx = ctx
        self.replay = replay or signing.ReplayCache()

    def verify_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        """The HMAC signature of ``body`` with SYMBIOTE_CALLBACK_SECRET, not seen before (else raise)."""
        settings = self.ctx.settings
        secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
        signing.verify(secret, body, headers, now=self.ctx.clock.now(), replay=self.replay)

    def authenticate(self, body: bytes, headers: Mapping[str, str]) -> AuthMethod:
        """``bearer`` or ``signature``, else raise (401; 409 replayed; 503 not configured)."""
        settings = self.ctx.settings
        token = settings.worker_token.get_secret_value() if settings.worker_token else None
        authorization = headers.get("authorization")
        if authorization is not None and signing.check_bearer(token, authorization):
            return AuthMethod.BEARER
        if any(k.lower() == signing.SIGNATURE_HEADER.lower() for k in headers):
            self.verify_signature(body, headers)
            return AuthMethod.SIGNATURE
        if authorization is not None:
            raise ApiError(401, "bad_token", "the bearer token is not SYMBIOTE_WORKER_TOKEN")
        raise ApiError(
            401,
            "unauthorized",
            f"sign the request ({signing.TIMESTAMP_HEADER}, {signing.SIGNATURE_HEADER}) or send "
            "Authorization: Bearer $SYMBIOTE_WORKER_TOKEN",
        )
