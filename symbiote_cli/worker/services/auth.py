"""Who may call the worker, and as whom.

* ``Authorization: Bearer $SYMBIOTE_WORKER_TOKEN``: the operator (every user, every endpoint).
* An HMAC signature with ``SYMBIOTE_CALLBACK_SECRET`` over timestamp, method, path and body
  (``signing``): the same authority, for local and self-hosted set-ups.
* ``Authorization: Bearer <GitHub Actions OIDC JWT>``: a run in a user's fork; only the routes a run
  calls accept it (its callbacks, fetching its request), and only for that user (``OidcClaims.bind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from symbiote_cli.core import signing
from symbiote_cli.worker.context import WorkerContext
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.services.oidc import OidcClaims, OidcVerifier


class AuthMethod(StrEnum):
    BEARER = "bearer"
    SIGNATURE = "signature"
    OIDC = "oidc"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the operator (bearer, signature) or a run (OIDC claims)."""

    method: AuthMethod
    key: str | None = None
    """For a signature: an id derived from it, so the same signed request always maps to the same id."""
    claims: OidcClaims | None = None

    @property
    def operator(self) -> bool:
        return self.method is not AuthMethod.OIDC


@dataclass(frozen=True)
class Target:
    """What a signature covers besides the body: the method and the request line's path and query."""

    method: str
    path: str


class Auth:
    """Checks the bearer token, a signature bound to the request, or an OIDC token."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        settings = ctx.settings
        self.oidc = OidcVerifier(settings.oidc_issuer, ctx.public_url)

    def verify_signature(self, body: bytes, headers: Mapping[str, str], target: Target) -> Principal:
        """The HMAC signature of this request with SYMBIOTE_CALLBACK_SECRET, fresh (else raise)."""
        settings = self.ctx.settings
        secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
        signature = signing.verify(
            secret, body, headers, method=target.method, path=target.path, now=self.ctx.clock.now()
        )
        return Principal(AuthMethod.SIGNATURE, key=signing.request_key(signature))

    def authenticate(
        self, body: bytes, headers: Mapping[str, str], target: Target, *, allow_oidc: bool = False
    ) -> Principal:
        """The caller, else raise (401; 403 an OIDC token where only the operator may call; 503 not configured)."""
        settings = self.ctx.settings
        token = settings.worker_token.get_secret_value() if settings.worker_token else None
        authorization = _one(headers, "authorization")
        if authorization is not None and signing.check_bearer(token, authorization):
            return Principal(AuthMethod.BEARER)
        bearer = signing.bearer_token(authorization)
        jwt_bearer = bearer is not None and bearer.count(".") == 2
        if jwt_bearer and allow_oidc:
            # A run's own proof comes first: a fork may also hold a (different) callback secret.
            assert bearer is not None
            return Principal(AuthMethod.OIDC, claims=self.oidc.verify(bearer))
        if any(k.lower() == signing.SIGNATURE_HEADER.lower() for k in headers):
            return self.verify_signature(body, headers, target)
        if jwt_bearer:
            assert bearer is not None
            self.oidc.verify(bearer)
            raise ApiError(403, "operator_only", "an OIDC token may only report a run and fetch its request")
        if authorization is not None:
            raise ApiError(401, "bad_token", "the bearer token is not SYMBIOTE_WORKER_TOKEN")
        raise ApiError(
            401,
            "unauthorized",
            f"sign the request ({signing.TIMESTAMP_HEADER}, {signing.SIGNATURE_HEADER}) or send "
            "Authorization: Bearer $SYMBIOTE_WORKER_TOKEN",
        )

    def optional(self, headers: Mapping[str, str], target: Target) -> Principal | None:
        """The operator if the request proves it (bearer or signature), else None (never raises)."""
        try:
            principal = self.authenticate(b"", headers, target)
        except (ApiError, signing.RequestRejected):
            return None
        return principal if principal.operator else None


def _one(headers: Mapping[str, str], name: str) -> str | None:
    values = [v for k, v in headers.items() if k.lower() == name]
    return values[0] if len(values) == 1 else None
