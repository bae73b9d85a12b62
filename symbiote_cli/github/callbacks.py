"""Authenticated requests from a run to the worker: session reports, state results, fetching a request.

Two proofs, either or both:

* **HMAC** with ``SYMBIOTE_CALLBACK_SECRET`` (local and self-hosted set-ups), bound to the whole
  request as ``signing.sign`` describes: timestamp, method, path and query, body.
* **GitHub Actions OIDC** (a run in a user's fork, multi-tenant worker): the runner mints a JWT
  for the worker's URL as audience (``ACTIONS_ID_TOKEN_REQUEST_URL`` + ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``,
  present when the job has ``id-token: write``), sent as ``Authorization: Bearer <JWT>``. The
  worker checks it against GitHub's published keys and binds its claims to the session.

The body is our own JSON, never a token. Tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from symbiote_cli.core.errors import ConfigError, GitHubError
from symbiote_cli.core.redaction import REDACT
from symbiote_cli.core.signing import sign

log = logging.getLogger("symbiote.callbacks")

CALLBACK_PATH = "/session/callback"
OIDC_URL_VAR = "ACTIONS_ID_TOKEN_REQUEST_URL"
OIDC_TOKEN_VAR = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"


def request_target(url: str) -> str:
    """The path and query of ``url`` exactly as they go on the request line (what the MAC covers)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def worker_base(url: str) -> str:
    """The worker's base URL (the OIDC audience) from a callback URL: ``https://w.example/session/callback``
    → ``https://w.example``. A URL that is no callback URL is taken as the base itself."""
    url = url.rstrip("/")
    return url.removesuffix(CALLBACK_PATH) if url.endswith(CALLBACK_PATH) else url


def oidc_available(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(OIDC_URL_VAR) and env.get(OIDC_TOKEN_VAR))


def actions_oidc_token(audience: str, environ: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> str:
    """A GitHub Actions OIDC token (JWT) for ``audience``, from the runner (needs ``id-token: write``)."""
    import requests  # noqa: PLC0415 - requests on first use: route stays light (test_startup)

    env = os.environ if environ is None else environ
    url, token = env.get(OIDC_URL_VAR), env.get(OIDC_TOKEN_VAR)
    if not url or not token:
        raise ConfigError(f"no OIDC token: the job needs 'id-token: write' ({OIDC_URL_VAR} is not set)")
    REDACT.add(token)
    separator = "&" if "?" in url else "?"
    try:
        response = requests.get(
            f"{url}{separator}audience={quote(audience, safe='')}",
            headers={"Authorization": f"bearer {token}", "Accept": "application/json"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise GitHubError(f"could not get an OIDC token from the runner ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise GitHubError(f"the runner refused an OIDC token ({response.status_code})", response.status_code)
    try:
        value = response.json().get("value")
    except (ValueError, AttributeError):
        value = None
    if not isinstance(value, str) or value.count(".") != 2:
        raise GitHubError("the runner's OIDC answer holds no token")
    REDACT.add(value)
    return value


def auth_headers(
    method: str,
    url: str,
    body: bytes,
    secret: str | None,
    now: float,
    *,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The proof(s) this process can give the worker for ``METHOD url``: HMAC, OIDC, or both."""
    headers: dict[str, str] = {}
    if secret:
        headers.update(sign(secret, body, int(now), method=method, path=request_target(url)))
    if oidc_available(environ):
        headers["Authorization"] = f"Bearer {actions_oidc_token(worker_base(_base_of(url)), environ)}"
    if not headers:
        raise ConfigError(
            "calling the worker needs SYMBIOTE_CALLBACK_SECRET or a GitHub Actions OIDC token (id-token: write)"
        )
    return headers


def _base_of(url: str) -> str:
    """The worker's base URL for any of its endpoints a run calls."""
    url = url.split("?", 1)[0].rstrip("/")
    for marker in (CALLBACK_PATH, "/state/"):
        index = url.find(marker)
        if index >= 0:
            return url[:index]
    return url


def _check_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError("the worker URL must start with http:// or https://")


def post_signed(
    url: str,
    payload: dict[str, Any],
    secret: str | None,
    now: float,
    *,
    timeout: float = 10.0,
    environ: Mapping[str, str] | None = None,
) -> int:
    """POST ``payload`` with the run's proof; return the HTTP status (0 when unreachable).

    Never raises on network errors (a lost report is retried by the next one)."""
    import requests  # noqa: PLC0415 - requests on first callback: route stays light (test_startup)

    _check_url(url)
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        headers = {"Content-Type": "application/json", **auth_headers("POST", url, body, secret, now, environ=environ)}
    except GitHubError as exc:
        log.warning("callback to the worker not sent: %s", exc.message)
        return 0
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        log.warning("callback to the worker failed (%s)", type(exc).__name__)
        return 0
    if response.status_code >= 400:
        log.warning("worker refused the callback (%s)", response.status_code)
    return response.status_code


def fetch_request(
    worker_url: str,
    state_id: str,
    secret: str | None,
    now: float,
    *,
    timeout: float = 15.0,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``GET {worker}/state/{stateId}/request``: the request a dispatched run acts on (never in its inputs)."""
    import requests  # noqa: PLC0415 - requests on first use: route stays light (test_startup)

    _check_url(worker_url)
    url = f"{worker_url.rstrip('/')}/state/{quote(state_id, safe='')}/request"
    headers = {"Accept": "application/json", **auth_headers("GET", url, b"", secret, now, environ=environ)}
    try:
        response = requests.get(url, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise GitHubError(f"could not reach the worker for state {state_id[:40]} ({type(exc).__name__})") from None
    if response.status_code != 200:
        try:
            code = response.json().get("error")
        except (ValueError, AttributeError):
            code = None
        raise GitHubError(
            f"the worker refused the request of state {state_id[:40]} ({response.status_code} {code or ''})".strip(),
            response.status_code,
        )
    data = response.json()
    if not isinstance(data, dict):
        raise GitHubError("the worker's answer is not a JSON object")
    return data
