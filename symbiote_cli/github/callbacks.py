"""Signed POSTs to the worker: session reports and state results.

Signed with ``SYMBIOTE_CALLBACK_SECRET`` as ``signing.sign`` describes; the body
is our own JSON, never a token.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from symbiote_cli.core.errors import ConfigError
from symbiote_cli.core.signing import sign

log = logging.getLogger("symbiote.callbacks")


def post_signed(url: str, payload: dict[str, Any], secret: str | None, now: float, *, timeout: float = 10.0) -> int:
    """POST ``payload`` signed; return the HTTP status (0 when unreachable). Never raises on network errors."""
    import requests  # noqa: PLC0415 - requests on first callback: route stays light (test_startup)

    if not url.startswith(("http://", "https://")):
        raise ConfigError("callback URL must start with http:// or https://")
    if not secret:
        raise ConfigError("a callback URL needs SYMBIOTE_CALLBACK_SECRET to sign with")
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    headers = {"Content-Type": "application/json", **sign(secret, body, int(now))}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        log.warning("callback to the worker failed (%s)", type(exc).__name__)
        return 0
    if response.status_code >= 400:
        log.warning("worker refused the callback (%s)", response.status_code)
    return response.status_code
