"""The worker's error answers: one exception for every refusal, mapped from the core's errors."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from fastapi.responses import JSONResponse

from symbiote_cli.core import sessions, signing
from symbiote_cli.core.errors import (
    AuthError,
    ConfigError,
    GitHubError,
    InputError,
    RateLimitedError,
    SignatureError,
    StorageError,
    SymbioteError,
)
from symbiote_cli.core.redaction import REDACT


class ApiError(Exception):
    """An error answer: HTTP status, machine code, one human line (never a secret)."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """``{"error": code, "message": text}``, the message passed through ``REDACT`` once more."""
    return JSONResponse({"error": code, "message": REDACT(message)}, status_code=status, headers=dict(headers or {}))


def as_api_error(exc: BaseException) -> ApiError:
    """Map the core's errors onto HTTP: bad input 4xx, GitHub or storage trouble 502/503."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, signing.RequestRejected):
        return ApiError(exc.status, exc.code, exc.message)
    if isinstance(exc, sessions.SessionError):
        return ApiError(exc.status, exc.code, exc.message)
    if isinstance(exc, RateLimitedError):
        retry = max(1, math.ceil(exc.retry_at - time.time()))
        return ApiError(503, "github_rate_limited", exc.message, {"Retry-After": str(retry)})
    if isinstance(exc, AuthError):
        return ApiError(502, "github_auth", exc.message)
    if isinstance(exc, GitHubError):
        return ApiError(502, "github_error", exc.message)
    if isinstance(exc, ConfigError):
        return ApiError(503, "not_configured", exc.message)
    if isinstance(exc, SignatureError):
        return ApiError(401, "bad_signature", exc.message)
    if isinstance(exc, InputError):
        return ApiError(422, "invalid_input", exc.message)
    if isinstance(exc, StorageError):
        return ApiError(503, "storage_error", exc.message)
    if isinstance(exc, SymbioteError):
        return ApiError(400, "rejected", exc.message)
    return ApiError(500, "internal", f"unexpected {type(exc).__name__}")
