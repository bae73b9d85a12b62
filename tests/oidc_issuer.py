"""A GitHub Actions-like OIDC issuer on loopback, for tests: discovery, JWKS, and a minting function.

It serves ``/.well-known/openid-configuration`` (``issuer``, ``jwks_uri``) and ``/.well-known/jwks``
over plain HTTP on 127.0.0.1 (the worker accepts an ``http://`` issuer on loopback only), and mints
RS256 tokens with the claims GitHub puts in a workflow run's token
(https://docs.github.com/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcIssuer:
    """``with OidcIssuer() as issuer: token = issuer.mint(owner=..., repo=..., workflow=..., run_id=...)``."""

    def __init__(self) -> None:
        self.key = rsa_key()
        self.kid = "test-key-1"
        self.requests: list[str] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks"}
                elif self.path == "/.well-known/jwks":
                    jwk = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
                    body = {"keys": [{**jwk, "kid": issuer.kid, "use": "sig", "alg": "RS256"}]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> OidcIssuer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def claims(
        self,
        *,
        audience: str,
        owner: str,
        repo: str,
        workflow: str = "symbiote-main.yml",
        run_id: str | int = "1001",
        now: float | None = None,
        ttl: int = 300,
    ) -> dict[str, Any]:
        """The claims of a token GitHub would mint for a run of ``workflow`` in ``owner/repo``."""
        issued = int(time.time() if now is None else now)
        full = f"{owner}/{repo}"
        ref = f"{full}/.github/workflows/{workflow}@refs/heads/main"
        return {
            "iss": self.url,
            "aud": audience,
            "sub": f"repo:{full}:ref:refs/heads/main",
            "iat": issued,
            "nbf": issued,
            "exp": issued + ttl,
            "repository": full,
            "repository_owner": owner,
            "repository_id": "700000001",
            "run_id": str(run_id),
            "run_attempt": "1",
            "workflow_ref": ref,
            "job_workflow_ref": ref,
            "event_name": "workflow_dispatch",
            "ref": "refs/heads/main",
            "actor": owner,
        }

    def sign(self, claims: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None, kid: str | None = None) -> str:
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def mint(self, **kwargs: Any) -> str:
        return self.sign(self.claims(**kwargs))
