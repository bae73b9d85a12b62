"""The ``act`` command's core: one action request, at most once per state id.

Three ways in: an ``ActionRequest`` given directly; the same with ``--state-id``
(the result is kept in the storage outbox, and a second run with that id returns
it instead of acting again); or workflow inputs (``--inputs-env``), either
Symbiote's own (``state_id`` + ``request``) or the UbiquityOS kernel's signed
plugin inputs. The services (executor, storage, sealer) come as arguments; the
wiring builds them from the settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from symbiote_cli.core.errors import InputError, SignatureError
from symbiote_cli.core.inputs import parse_request
from symbiote_cli.core.models import ActionRequest, ActionResult, valid_state_id
from symbiote_cli.flows.inbox import Outcome, already_handled, outbox_json
from symbiote_cli.storage import transactions

if TYPE_CHECKING:
    from symbiote_cli.core.clock import Clock
    from symbiote_cli.core.privacy import Sealer
    from symbiote_cli.flows.execute import Executor
    from symbiote_cli.storage.branch import Storage

# Hands a stored outbox record on (the signed callback to the worker), when one is wanted.
Report = Callable[[dict[str, Any]], None]


# Kernel inputs that older kernels do not send (see act_from_inputs).
_OPTIONAL_KERNEL_INPUTS = frozenset({"ubiquityKernelToken"})


@dataclass
class ActOutcome:
    state_id: str | None
    result: ActionResult


def act_once(
    request: ActionRequest,
    *,
    executor: Executor,
    clock: Clock,
    state_id: str | None = None,
    storage: Storage | None = None,
    sealer: Sealer | None = None,
    owner: Callable[[], str] | None = None,
    report: Report | None = None,
) -> ActOutcome:
    """Execute ``request``; with a state id, exactly once (outbox on ``storage``).

    ``owner`` names whose outbox record it is, asked only when one is written (it may cost
    a ``GET /user``); ``report`` gets the stored record.
    """
    if state_id is None:
        return ActOutcome(None, executor.execute(request))
    valid_state_id(state_id)
    assert storage is not None, "a state id needs the storage branch"
    already = already_handled(storage, state_id)
    if already is not None:
        return ActOutcome(state_id, already)
    result = executor.execute(request)
    if not executor.dry_run:
        assert owner is not None, "a stored result needs its owner"
        outcome = Outcome(state_id, result, None, private=request.private)
        record = outbox_json(owner(), outcome, sealer, clock.now())
        # A concurrent run of the same state id may have stored first: the first record is kept.
        record_once = partial(transactions.record_outcome, state_id=state_id, record=record)
        storage.update(record_once, f"act: result of state {state_id[:40]}")
        if report is not None:
            report({"kind": "state_result", **record})
    return ActOutcome(state_id, result)


def read_inputs(variable: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """The workflow_dispatch inputs passed as a JSON object in an environment variable."""
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
    return inputs


def kernel_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The kernel's inputs as it signed them; a missing signature is refused first."""
    signature = inputs.get("signature")
    if not isinstance(signature, str) or not signature.strip():
        raise SignatureError("kernel request signature is missing: the kernel signs every request")
    # A declared workflow input the dispatcher did not send arrives as its default, "". An older
    # kernel sends no ubiquityKernelToken and signs without that key, so an empty one here means
    # "absent"; kept, it would enter the signed string and fail a genuine request.
    return {k: v for k, v in inputs.items() if not (k in _OPTIONAL_KERNEL_INPUTS and v == "")}


def own_form(inputs: Mapping[str, Any], callback_url: str | None) -> tuple[str, ActionRequest, str | None]:
    """Symbiote's own inputs: (state id, request, callback URL: the option's, else the inputs')."""
    state_id = inputs.get("state_id")
    request_text = inputs.get("request")
    if not isinstance(state_id, str) or not state_id:
        raise InputError("workflow inputs lack state_id")
    if not isinstance(request_text, str) or not request_text:
        raise InputError("workflow inputs lack request (an action request as JSON text)")
    url = callback_url or inputs.get("callback_url") or None
    return state_id, parse_request(request_text), url if isinstance(url, str) else None
