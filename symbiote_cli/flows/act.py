"""The ``act`` command's core: one action request, at most once per state id.

Three ways in: an ``ActionRequest`` given directly; the same with ``--state-id``
(the result is kept in the storage outbox, and a second run with that id returns
it instead of acting again); or workflow inputs (``--inputs-env``), either
Symbiote's own (``state_id`` + ``request``) or the UbiquityOS kernel's signed
plugin inputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from symbiote_cli.core.clock import Clock, SystemClock
from symbiote_cli.core.errors import InputError, SignatureError
from symbiote_cli.core.models import ActionRequest, ActionResult, ActionStatus
from symbiote_cli.flows.inbox import Outcome, outbox_json, valid_state_id
from symbiote_cli.storage import layout as state

if TYPE_CHECKING:
    from symbiote_cli.github.client import GitHubClient
    from symbiote_cli.settings import Settings
    from symbiote_cli.storage.branch import Storage


# Kernel inputs that older kernels do not send (see act_from_inputs).
_OPTIONAL_KERNEL_INPUTS = frozenset({"ubiquityKernelToken"})


@dataclass
class ActOutcome:
    state_id: str | None
    result: ActionResult


def act_once(
    settings: Settings,
    request: ActionRequest,
    *,
    state_id: str | None = None,
    dry_run: bool = False,
    callback_url: str | None = None,
    clock: Clock | None = None,
    storage: Storage | None = None,
    client: GitHubClient | None = None,
    user: str | None = None,
) -> ActOutcome:
    """Execute ``request``; with a state id, exactly once (outbox on the storage branch).

    ``storage``/``client`` let a long-running process (the worker) share its own.
    """
    from symbiote_cli.wiring import make_client, make_executor, make_sealer, make_storage, resolve_user

    clock = clock or SystemClock()
    client = client or make_client(settings)
    executor = make_executor(settings, client, clock, dry_run=dry_run)
    if state_id is None:
        return ActOutcome(None, executor.execute(request))
    valid_state_id(state_id)
    storage = storage or make_storage(settings, clock)
    stored = storage.read_json(state.outbox_path(state_id))
    if isinstance(stored, dict) and isinstance(stored.get("result"), dict):
        try:
            previous = ActionResult.model_validate(stored["result"])
        except ValidationError:
            previous = None
        if previous is not None:
            already = previous.model_copy(
                update={"status": ActionStatus.ALREADY_DONE, "detail": f"state {state_id} already handled"}
            )
            return ActOutcome(state_id, already)
    result = executor.execute(request)
    if not dry_run:
        sealer = make_sealer(settings)
        outcome = Outcome(state_id, result, None, private=request.private)
        owner = user or resolve_user(settings, client, None)
        record = outbox_json(owner, outcome, sealer, clock.now())
        path = state.outbox_path(state_id)
        # A concurrent run of the same state id may have stored first: keep the first record.
        storage.update(
            lambda view: {} if view.read_json(path) is not None else {path: record},
            f"act: result of state {state_id[:40]}",
        )
        if callback_url:
            from symbiote_cli.github.callbacks import post_signed

            secret = settings.callback_secret.get_secret_value() if settings.callback_secret else None
            post_signed(callback_url, {"kind": "state_result", **record}, secret, clock.now())
    return ActOutcome(state_id, result)


def act_from_inputs(
    settings: Settings,
    variable: str,
    environ: Mapping[str, str],
    *,
    dry_run: bool = False,
    callback_url: str | None = None,
    clock: Clock | None = None,
) -> ActOutcome:
    """Act on workflow_dispatch inputs passed as JSON in an environment variable."""
    raw = environ.get(variable)
    if raw is None:
        raise InputError(f"environment variable {variable} is not set")
    try:
        inputs = json.loads(raw)
    except RecursionError:
        raise InputError(f"{variable} is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{variable} is not JSON ({exc.msg})") from None
    if not isinstance(inputs, dict):
        raise InputError(f"{variable} must hold a JSON object of workflow inputs")
    from symbiote_cli.core.inputs import InputsForm, inputs_form

    if inputs_form(inputs) is InputsForm.KERNEL:
        from symbiote_cli.flows.kernel_requests import act_on_kernel_inputs

        signature = inputs.get("signature")
        if not isinstance(signature, str) or not signature.strip():
            raise SignatureError("kernel request signature is missing: the kernel signs every request")
        # A declared workflow input the dispatcher did not send arrives as its default, "". An older
        # kernel sends no ubiquityKernelToken and signs without that key, so an empty one here means
        # "absent"; kept, it would enter the signed string and fail a genuine request.
        kernel_inputs = {k: v for k, v in inputs.items() if not (k in _OPTIONAL_KERNEL_INPUTS and v == "")}
        return act_on_kernel_inputs(settings, kernel_inputs, dry_run=dry_run, clock=clock)
    return _own_form(settings, inputs, dry_run=dry_run, callback_url=callback_url, clock=clock)


def _own_form(
    settings: Settings,
    inputs: dict[str, Any],
    *,
    dry_run: bool,
    callback_url: str | None,
    clock: Clock | None,
) -> ActOutcome:
    from symbiote_cli.core.inputs import parse_request

    state_id = inputs.get("state_id")
    request_text = inputs.get("request")
    if not isinstance(state_id, str) or not state_id:
        raise InputError("workflow inputs lack state_id")
    if not isinstance(request_text, str) or not request_text:
        raise InputError("workflow inputs lack request (an action request as JSON text)")
    url = callback_url or inputs.get("callback_url") or None
    return act_once(
        settings,
        parse_request(request_text),
        state_id=state_id,
        dry_run=dry_run,
        callback_url=url if isinstance(url, str) else None,
        clock=clock,
    )
