"""Reading events and action requests given on the command line.

``route`` and ``rules explain`` accept one event or notification, a JSON array of them, or
JSON lines (``parse_items``); ``act``
accepts one action request, or workflow inputs in one of two forms. Errors name
the line or item and the field, never echo the (attacker-controlled) content.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from symbiote_cli.core.errors import InputError
from symbiote_cli.core.kernel import REQUIRED_KEYS, SIGNED_KEYS
from symbiote_cli.core.models import ActionRequest, Event, Item, parse_item

MAX_INPUT_BYTES = 32 * 1024 * 1024
T = TypeVar("T")


def read_text(source: str | None) -> str:
    """Read FILE, or standard input for ``-``/None."""
    try:
        if source in (None, "-"):
            data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
            where = "standard input"
        else:
            path = Path(str(source))
            if not path.is_file():
                raise InputError(f"no such file: {source}")
            with path.open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
            where = str(source)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"{where} is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text") from None


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "value"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {first.get('msg', 'invalid')}{more}"


def _validate(model: type[BaseModel], item: Any, where: str) -> Any:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(item).__name__}")
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        raise InputError(f"{where}: {_describe(exc)}") from None


def _validate_item(item: Any, where: str) -> Item:
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(item).__name__}")
    try:
        return parse_item(item)
    except ValidationError as exc:
        raise InputError(f"{where}: {_describe(exc)}") from None


def parse_events(text: str) -> list[Event]:
    """One event, a JSON array of events, or JSON lines."""
    return _parse_many(text, lambda item, where: _validate(Event, item, where))


def parse_items(text: str) -> list[Item]:
    """One event or notification (``GET /notifications``' thread JSON), a JSON array of them, or
    JSON lines; events and notifications may be mixed (``models.parse_item`` tells them apart)."""
    return _parse_many(text, _validate_item)


def _parse_many(text: str, validate: Callable[[Any, str], T]) -> list[T]:
    stripped = text.strip()
    if not stripped:
        raise InputError("no input: give an event as JSON (object, array or JSON lines)")
    try:
        whole = json.loads(stripped)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except json.JSONDecodeError as first_error:
        events: list[T] = []
        for number, line in enumerate(stripped.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except RecursionError:
                raise InputError(f"JSON nested too deeply on line {number}") from None
            except json.JSONDecodeError as exc:
                if number == 1:
                    raise InputError(
                        f"malformed JSON at line {first_error.lineno} column {first_error.colno}: {first_error.msg}"
                    ) from None
                raise InputError(f"malformed JSON on line {number}: {exc.msg}") from None
            events.append(validate(item, f"line {number}"))
        return events
    if isinstance(whole, list):
        return [validate(item, f"item {i}") for i, item in enumerate(whole)]
    return [validate(whole, "event")]


def parse_request(text: str) -> ActionRequest:
    """One action request (see README "Action requests")."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    request: ActionRequest = _validate(ActionRequest, data, "request")
    try:
        request.check_complete()
    except ValueError as exc:
        raise InputError(f"request: {exc}") from None
    return request


class InputsForm(StrEnum):
    """The two forms of ``act --inputs-env`` workflow inputs (symbiote-auth.yml declares both)."""

    OWN = "own"
    """Symbiote's: ``state_id`` + ``request`` (+ ``callback_url``)."""
    KERNEL = "kernel"
    """The UbiquityOS kernel's signed plugin inputs (``stateId``, ``eventPayload``, ..., ``signature``)."""


OWN_INPUTS = ("state_id", "request", "worker_url")


def inputs_form(inputs: Mapping[str, Any]) -> InputsForm:
    """Which form ``inputs`` take, by which inputs are set.

    A declared workflow_dispatch input the dispatcher did not send arrives as its default, ""
    (https://docs.github.com/actions/writing-workflows/workflow-syntax-for-github-actions#onworkflow_dispatchinputs),
    so only non-empty ones count. Any kernel input makes it the kernel's form, so a request that
    lacks its signature is reported as such, not as Symbiote's form lacking ``state_id``.
    """
    own = [key for key in OWN_INPUTS if inputs.get(key) not in (None, "")]
    kernel = [key for key in dict.fromkeys((*SIGNED_KEYS, *REQUIRED_KEYS)) if inputs.get(key) not in (None, "")]
    if own and kernel:
        raise InputError(
            f"workflow inputs mix Symbiote's form ({', '.join(own)}) with the kernel's ({', '.join(kernel)}):"
            " send one form"
        )
    return InputsForm.KERNEL if kernel else InputsForm.OWN
