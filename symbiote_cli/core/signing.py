"""HMAC-signed callbacks and state requests for the ``symbiote serve`` worker.

Protocol: the sender adds ``X-Symbiote-Timestamp: <unix seconds>`` and
``X-Symbiote-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`` keyed by
``SYMBIOTE_CALLBACK_SECRET``. The timestamp is inside the MAC so a captured request cannot be
re-dated, the tolerance window bounds how long it could be replayed, and :class:`ReplayCache`
closes that window: each signature is accepted once.

Pure: no network, no clock (``now`` is passed in). Error messages name headers and reasons,
never the secret or a signature value.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import math
import re
import threading
from collections.abc import Mapping

from symbiote_cli.core.errors import ConfigError, SignatureError

TIMESTAMP_HEADER = "X-Symbiote-Timestamp"
SIGNATURE_HEADER = "X-Symbiote-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = 300.0
DEFAULT_REPLAY_CAPACITY = 10_000

# Canonical forms only (what ``sign`` emits): no sign, no leading zeros, no whitespace, lowercase hex.
# Accepting variants would let one request carry several valid spellings of its signature.
_TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,11}")
_SIGNATURE_RE = re.compile(r"sha256=[0-9a-f]{64}")
_MAX_TIMESTAMP = 10**12 - 1

# Machine codes the worker returns in its JSON error body.
NOT_CONFIGURED = "not_configured"
MISSING_SIGNATURE = "missing_signature"
BAD_SIGNATURE = "bad_signature"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
STALE_TIMESTAMP = "stale_timestamp"
REPLAYED = "replayed"
REPLAY_CACHE_FULL = "replay_cache_full"


class RequestRejected(SignatureError):  # noqa: N818 - the name the worker and brief use
    """A signed request the worker must refuse, with the HTTP status and code to answer."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _payload(body: bytes, timestamp: str) -> bytes:
    return timestamp.encode("ascii") + b"." + body


def _mac_hex(secret: str, body: bytes, timestamp: str) -> str:
    return hmac.new(secret.encode("utf-8"), _payload(body, timestamp), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Both headers for ``body`` sent at ``timestamp`` (what workflow runs attach to callbacks)."""
    if not secret:
        raise ConfigError("no callback secret: set SYMBIOTE_CALLBACK_SECRET to sign requests")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("timestamp must be a non-negative integer number of Unix seconds")
    text = str(timestamp)
    return {TIMESTAMP_HEADER: text, SIGNATURE_HEADER: SIGNATURE_PREFIX + _mac_hex(secret, body, text)}


class ReplayCache:
    """Signatures accepted recently, so each signed request is honoured once.

    An entry lives until its request's timestamp leaves the tolerance window (after that the
    stale check rejects it anyway), so memory is bounded by the request rate times the window,
    and by ``max_entries``. When full of unexpired entries the cache refuses new requests
    (503) rather than forgetting one: forgetting would re-open a replay. Thread safe.
    """

    def __init__(self, max_entries: int = DEFAULT_REPLAY_CAPACITY) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expires_at, key), one per key in _expiry

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._expiry

    def _purge_locked(self, now: float) -> int:
        removed = 0
        while self._heap and self._heap[0][0] < now:
            _, key = heapq.heappop(self._heap)
            del self._expiry[key]
            removed += 1
        return removed

    def purge(self, now: float) -> int:
        """Forget entries whose window has passed; return how many were dropped."""
        with self._lock:
            return self._purge_locked(now)

    def check_and_remember(self, key: str, *, expires_at: float, now: float) -> bool:
        """Remember ``key`` until ``expires_at``; False if it was already remembered (a replay).

        Raises RequestRejected (503, ``replay_cache_full``) when the cache is full.
        """
        if not (math.isfinite(expires_at) and math.isfinite(now)):
            raise ValueError("expires_at and now must be finite")
        with self._lock:
            self._purge_locked(now)
            if key in self._expiry:
                return False
            if expires_at < now:
                # Already outside the window: nothing to remember (verify rejects these as stale).
                return True
            if len(self._expiry) >= self.max_entries:
                raise RequestRejected(
                    "too many recent signed requests to track replays; retry later",
                    status=503,
                    code=REPLAY_CACHE_FULL,
                )
            self._expiry[key] = expires_at
            heapq.heappush(self._heap, (expires_at, key))
            return True


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
    now: float,
    replay: ReplayCache | None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> None:
    """Accept a signed request or raise RequestRejected carrying the status and code to answer.

    Order matters: configuration, then header shape, then the MAC (constant time), and only for
    authentic requests the freshness and replay checks, so forged requests learn nothing and
    never occupy the replay cache. A request accepted once is refused (409) if sent again:
    a sender retrying must sign again with a fresh timestamp.
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

    expected = (SIGNATURE_PREFIX + _mac_hex(secret, body, timestamp)).encode("ascii")
    if not hmac.compare_digest(expected, signature.encode("ascii")):
        raise RequestRejected("signature does not match the body and timestamp", status=401, code=BAD_SIGNATURE)

    sent_at = int(timestamp)
    if abs(now - sent_at) > tolerance:
        raise RequestRejected(
            f"timestamp is more than {tolerance:g}s away from the worker's clock", status=401, code=STALE_TIMESTAMP
        )
    if replay is not None and not replay.check_and_remember(signature, expires_at=sent_at + tolerance, now=now):
        raise RequestRejected("this signed request was already accepted once", status=409, code=REPLAYED)


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
