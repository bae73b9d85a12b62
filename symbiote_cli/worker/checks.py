"""Input checks shared by the routes and services: each refuses bad input with a 422 ``ApiError``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from symbiote_cli.core.errors import InputError
from symbiote_cli.core.models import valid_login, valid_state_id
from symbiote_cli.settings import describe_validation_error
from symbiote_cli.worker.errors import ApiError


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object (422 ``invalid_json`` otherwise)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(422, "invalid_json", "the body is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object")
    return data


def try_parse_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None: the caller decides later whether that is an error."""
    try:
        return parse_object(body)
    except ApiError:
        return None


def is_kernel_form(data: Mapping[str, Any]) -> bool:
    """The UbiquityOS kernel's signed inputs (rather than Symbiote's own state request)."""
    return "signature" in data and "eventPayload" in data


def login(user: str) -> str:
    """A GitHub login, as given (422 ``invalid_user`` otherwise)."""
    try:
        return valid_login(user)
    except ValueError:
        raise ApiError(422, "invalid_user", "not a GitHub login (letters, digits and single hyphens, max 39)") from None


def state_id(value: str) -> str:
    """A state id safe as a file name (422 ``invalid_state_id`` otherwise)."""
    try:
        return valid_state_id(value)
    except InputError as exc:
        raise ApiError(422, "invalid_state_id", exc.message) from None


def validation_message(exc: ValidationError) -> str:
    """One line naming the invalid fields (never their values)."""
    return describe_validation_error(exc)
