"""GitHub Actions OIDC tokens: how runs in users' forks prove who they are to the worker.

A job with ``id-token: write`` asks the runner for a JWT whose audience is the worker's public URL
(``SYMBIOTE_WORKER_URL``) and sends it as ``Authorization: Bearer <JWT>``. The worker checks it with
PyJWT against the issuer's published keys (``SYMBIOTE_OIDC_ISSUER``, default GitHub's; keys from
``{issuer}/.well-known/openid-configuration`` → ``jwks_uri``, cached by ``PyJWKClient``): signature
(RS256), ``iss``, ``aud``, ``exp``/``nbf``/``iat`` with a small leeway. What the claims may do is
decided by the caller (``OidcClaims.bind``): the run must come from the session user's enrolled
fork, from ``symbiote-main.yml`` or ``symbiote-auth.yml``, and from the session's recorded run.

An ``http://`` issuer is accepted only on loopback (tests run their own issuer there).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from symbiote_cli.core.errors import ConfigError
from symbiote_cli.worker.errors import ApiError

if TYPE_CHECKING:
    import jwt

LEEWAY_S = 60
DISCOVERY_TIMEOUT_S = 10.0
JWKS_LIFESPAN_S = 3600
WORKFLOWS = ("symbiote-main.yml", "symbiote-auth.yml")


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str, what: str = "SYMBIOTE_OIDC_ISSUER") -> str:
    """``https://…``, or ``http://`` on loopback only; no query or fragment."""
    parts = urlsplit(url)
    if (parts.scheme == "https" and parts.hostname) or (parts.scheme == "http" and _loopback(parts.hostname)):
        pass
    else:
        raise ConfigError(f"{what} must be an https:// URL (http:// only on loopback)")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} must not have a query or fragment")
    return url.rstrip("/")


@dataclass(frozen=True)
class OidcClaims:
    """The verified claims of one token, and the checks that bind them to a user's fork and run."""

    claims: dict[str, Any]

    def text(self, name: str) -> str:
        value = self.claims.get(name)
        return value if isinstance(value, str) else ""

    @property
    def owner(self) -> str:
        return self.text("repository_owner")

    @property
    def repository(self) -> str:
        return self.text("repository")

    @property
    def run_id(self) -> str:
        value = self.claims.get("run_id")
        return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""

    def workflow(self) -> str | None:
        """Which of Symbiote's workflows in the token's own repository minted it, else None."""
        for name in ("job_workflow_ref", "workflow_ref"):
            ref = self.text(name)
            path, _, _ref = ref.partition("@")
            for workflow in WORKFLOWS:
                if path.lower() == f"{self.repository}/.github/workflows/{workflow}".lower():
                    return workflow
        return None

    def bind(self, *, user: str, fork: str, workflows: tuple[str, ...] = WORKFLOWS, run_id: str | None = None) -> None:
        """Raise 403 unless the token is from ``user``'s ``fork``, one of ``workflows``, and (when
        known) the run ``run_id``."""
        if self.owner.lower() != user.lower():
            raise ApiError(403, "wrong_owner", "the OIDC token's repository_owner is not this session's user")
        if self.repository.lower() != fork.lower():
            raise ApiError(403, "wrong_repository", f"the OIDC token is not from {fork}, the user's enrolled fork")
        workflow = self.workflow()
        if workflow is None or workflow not in workflows:
            raise ApiError(
                403, "wrong_workflow", f"the OIDC token was not minted by {' or '.join(workflows)} of {fork}"
            )
        if run_id is not None and self.run_id != run_id:
            raise ApiError(403, "wrong_run", "the OIDC token's run_id is not the run recorded for this session")


class OidcVerifier:
    """Verifies tokens of one issuer for one audience; discovery and keys are fetched once, then cached."""

    def __init__(self, issuer: str, audience: str | None) -> None:
        self.issuer = check_issuer_url(issuer)
        self.audience = audience.rstrip("/") if audience else None
        self._lock = threading.Lock()
        self._jwks: jwt.PyJWKClient | None = None

    def _client(self) -> jwt.PyJWKClient:
        import jwt  # noqa: PLC0415 - PyJWT on first use: route stays light (test_startup)

        with self._lock:
            if self._jwks is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_S) as response:  # noqa: S310 - https, or http on loopback (checked)
                        document = json.loads(response.read(1_000_000).decode("utf-8"))
                except (OSError, ValueError) as exc:
                    reason = type(exc).__name__
                    raise ApiError(
                        503, "oidc_unavailable", f"the OIDC issuer's configuration is unreachable ({reason})"
                    ) from None
                jwks_uri = document.get("jwks_uri") if isinstance(document, dict) else None
                if not isinstance(jwks_uri, str):
                    raise ApiError(503, "oidc_unavailable", "the OIDC issuer's configuration has no jwks_uri")
                try:
                    check_issuer_url(jwks_uri, "jwks_uri")
                except ConfigError:
                    raise ApiError(503, "oidc_unavailable", "the OIDC issuer's jwks_uri is not https") from None
                self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=10)
            return self._jwks

    def verify(self, token: str) -> OidcClaims:
        """The token's claims once signature, issuer, audience and times check out (else 401)."""
        import jwt  # noqa: PLC0415 - PyJWT on first use: route stays light (test_startup)

        if not self.audience:
            raise ApiError(503, "not_configured", "OIDC needs SYMBIOTE_WORKER_URL (the tokens' audience)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise ApiError(401, "bad_token", "the bearer token is neither SYMBIOTE_WORKER_TOKEN nor a JWT") from None
        if header.get("alg") != "RS256":
            raise ApiError(401, "bad_token", "the OIDC token is not RS256")
        try:
            key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError:
            raise ApiError(503, "oidc_unavailable", "the OIDC issuer's keys are unreachable") from None
        except jwt.PyJWTError:
            raise ApiError(401, "bad_token", "the OIDC token is not signed by a key of the issuer") from None
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise ApiError(401, "expired_token", "the OIDC token has expired") from None
        except jwt.InvalidAudienceError:
            raise ApiError(401, "wrong_audience", "the OIDC token is not for this worker (aud)") from None
        except jwt.InvalidIssuerError:
            raise ApiError(401, "wrong_issuer", "the OIDC token is from another issuer") from None
        except jwt.PyJWTError:
            raise ApiError(401, "bad_token", "the OIDC token does not verify") from None
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > time.time() + LEEWAY_S:
            raise ApiError(401, "bad_token", "the OIDC token was issued in the future")
        return OidcClaims(claims)
