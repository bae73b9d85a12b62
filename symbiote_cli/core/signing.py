"""HMAC-signed requests to the ``symbiote serve`` worker, bound to the whole request.

Protocol: the sender adds ``X-Symbiote-Timestamp: <unix seconds>`` and
``X-Symbiote-Signature: sha256=<hex HMAC-SHA256 over "<ts>.<METHOD>.<path>.<raw body>">`` keyed by
``SYMBIOTE_CALLBACK_SECRET``, where ``<path>`` is the path and query exactly as in the request line
(``/state/req-1``, ``/storage/events/octo?limit=5``). The timestamp is inside the MAC so a captured
request cannot be re-dated, and the method and path are inside it so a signature made for one
request is worthless on any other (a signed ``GET`` cannot start a session, a body captured for
``/state/a`` cannot queue ``/state/b``). A timestamp more than the tolerance away from the
worker's clock is refused.

There is no replay cache: no security decision depends on process memory. A signed request
replayed inside the tolerance window reaches the same handler with the same id (state id, session
id derived from the signature, session id + report), and every mutating handler is idempotent by
that id on the storage branch, so a replay on another replica or after a restart changes nothing.

Pure: no network, no clock (``now`` is passed in). Error messages name headers and reasons,
never the secret or a signature value.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping

from symbiote_cli.core.errors import ConfigError, SignatureError

TIMESTAMP_HEADER = "X-Symbiote-Timestamp"
SIGNATURE_HEADER = "X-Symbiote-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = 300.0

# Canonical forms only (what ``sign`` emits): no sign, no leading zeros, no whitespace, lowercase hex.
# Accepting variants would let one request carry several valid spellings of its signature.
_TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,11}")
_SIGNATURE_RE = re.compile(r"sha256=[0-9a-f]{64}")
_METHOD_RE = re.compile(r"[A-Z]{1,16}")
_MAX_TIMESTAMP = 10**12 - 1

# Machine codes the worker returns in its JSON error body.
NOT_CONFIGURED = "not_configured"
MISSING_SIGNATURE = "missing_signature"
BAD_SIGNATURE = "bad_signature"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
STALE_TIMESTAMP = "stale_timestamp"


class RequestRejected(SignatureError):  # noqa: N818 - the name the worker and brief use
    """A signed request the worker must refuse, with the HTTP status and code to answer."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _check_target(method: str, path: str) -> str:
    method = method.upper()
    if not _METHOD_RE.fullmatch(method):
        raise ValueError("method must be an HTTP method name")
    if not path.startswith("/") or any(c in path for c in "\r\n "):
        raise ValueError("path must be the request line's path (and query), starting with /")
    return method


def payload(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    """The exact bytes the MAC covers: ``<ts>.<METHOD>.<path>.<raw body>``."""
    return f"{timestamp}.{_check_target(method, path)}.{path}.".encode() + body


def _mac_hex(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), payload(timestamp, method, path, body), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int, *, method: str, path: str) -> dict[str, str]:
    """Both headers for ``METHOD path`` with ``body`` sent at ``timestamp``."""
    if not secret:
        raise ConfigError("no callback secret: set SYMBIOTE_CALLBACK_SECRET to sign requests")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("timestamp must be a non-negative integer number of Unix seconds")
    text = str(timestamp)
    return {TIMESTAMP_HEADER: text, SIGNATURE_HEADER: SIGNATURE_PREFIX + _mac_hex(secret, text, method, path, body)}


def _one_header(headers: Mapping[str, str], name: str, bad_code: str) -> str | None:
    """Case-insensitive lookup; a header given twice is ambiguous, hence malformed."""
    wanted = name.lower()
    values = [value for key, value in headers.items() if key.lower() == wanted]
    if len(values) > 1:
        raise RequestRejected(f"{name} header given more than once", status=401, code=bad_code)
    return values[0] if values else None


def verify(
    secret: str | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> str:
    """Accept a signed request or raise RequestRejected carrying the status and code to answer.

    Returns the (verified) signature, which callers may use as the request's idempotency key.
    Order matters: configuration, then header shape, then the MAC (constant time), and only for
    authentic requests the freshness check, so forged requests learn nothing.
    """
    if not secret:
        raise RequestRejected(
            "callback secret is not configured (SYMBIOTE_CALLBACK_SECRET); refusing signed requests",
            status=503,
            code=NOT_CONFIGURED,
        )
    if not math.isfinite(now):
        raise ValueError("now must be finite")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError("tolerance must be a finite, non-negative number of seconds")

    signature = _one_header(headers, SIGNATURE_HEADER, BAD_SIGNATURE)
    if signature is None:
        raise RequestRejected(f"missing {SIGNATURE_HEADER} header", status=401, code=MISSING_SIGNATURE)
    timestamp = _one_header(headers, TIMESTAMP_HEADER, BAD_TIMESTAMP)
    if timestamp is None:
        raise RequestRejected(f"missing {TIMESTAMP_HEADER} header", status=401, code=MISSING_TIMESTAMP)
    if not _TIMESTAMP_RE.fullmatch(timestamp):
        raise RequestRejected(
            f"{TIMESTAMP_HEADER} must be an integer number of Unix seconds", status=401, code=BAD_TIMESTAMP
        )
    if not _SIGNATURE_RE.fullmatch(signature):
        raise RequestRejected(
            f"{SIGNATURE_HEADER} must be sha256= followed by 64 lowercase hex digits", status=401, code=BAD_SIGNATURE
        )

    try:
        expected = (SIGNATURE_PREFIX + _mac_hex(secret, timestamp, method, path, body)).encode("ascii")
    except ValueError:
        raise RequestRejected(
            "this request's method or path cannot be signed", status=401, code=BAD_SIGNATURE
        ) from None
    if not hmac.compare_digest(expected, signature.encode("ascii")):
        raise RequestRejected(
            "signature does not match this request (timestamp, method, path and body)", status=401, code=BAD_SIGNATURE
        )

    if abs(now - int(timestamp)) > tolerance:
        raise RequestRejected(
            f"timestamp is more than {tolerance:g}s away from the worker's clock", status=401, code=STALE_TIMESTAMP
        )
    return signature


def request_key(signature: str) -> str:
    """A short id derived from a verified signature: the same signed request always maps to it."""
    return hashlib.sha256(signature.encode("ascii")).hexdigest()[:32]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def check_bearer(expected: str | None, authorization: str | None) -> bool:
    """True when ``Authorization: Bearer <token>`` carries ``expected`` (SYMBIOTE_WORKER_TOKEN).

    No token configured means no bearer access. Both sides are hashed before the constant-time
    compare so that neither the token's content nor its length leaks through timing.
    """
    if not expected or not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    return hmac.compare_digest(_digest(expected), _digest(token))


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
