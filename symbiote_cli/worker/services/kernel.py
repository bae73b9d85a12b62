"""The UbiquityOS kernel's form (``POST /`` and ``POST /state/{stateId}``): RSA-signed plugin inputs.

A verified request is acted on only inside the served user's scope (``core.scope``): otherwise 403
``out_of_scope`` with the reason, recorded in the outbox as skipped, and nothing done. In local mode
the worker acts with its own token for its one user; in actions mode the request goes to the
sender's own fork (dispatched like any state request: the run fetches the inputs, verifies them
again and checks them against the user's own scope settings).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from symbiote_cli.core.errors import InputError, SignatureError, SymbioteError
from symbiote_cli.core.kernel import KernelRequest, parse_and_verify
from symbiote_cli.core.models import ActionKind, ActionResult, ActionStatus, valid_state_id
from symbiote_cli.core.scope import Scope, out_of_scope
from symbiote_cli.flows.inbox import Outcome, outbox_json
from symbiote_cli.flows.kernel_requests import kernel_output
from symbiote_cli.storage import transactions
from symbiote_cli.wiring import act_on_kernel_inputs
from symbiote_cli.worker.context import WorkerContext, WorkerMode
from symbiote_cli.worker.errors import ApiError
from symbiote_cli.worker.models import KernelAnswer, KernelOutput

if TYPE_CHECKING:
    from symbiote_cli.worker.services.state import StateService
    from symbiote_cli.worker.services.tenancy import Tenancy

log = logging.getLogger("symbiote.worker")


class KernelService:
    """Acts on the kernel's inputs as the plugin SDK's worker does: 200 with the output, or 400."""

    def __init__(self, ctx: WorkerContext, tenancy: Tenancy, states: StateService) -> None:
        self.ctx = ctx
        self.tenancy = tenancy
        self.states = states

    def scope(self, req: KernelRequest, base_url: str) -> Scope:
        """The scope the request must fall in: the served user's (local), or its sender's (actions)."""
        settings = self.ctx.settings
        urls = (self.ctx.worker_url(base_url),)
        if self.ctx.mode is WorkerMode.LOCAL or not self.tenancy.multi_tenant:
            return Scope.build(
                self.tenancy.served_user(),
                allowed_senders=settings.kernel_allowed_senders,
                repos=settings.kernel_scope,
                plugin_urls=urls,
            )
        # Multi-tenant: the sender's own fork acts, and checks the repository against the scope its
        # user set there (SYMBIOTE_KERNEL_SCOPE is the user's setting, not the operator's).
        return Scope.build(req.sender or "", plugin_urls=urls, check_repo=False)

    def refuse(self, req: KernelRequest, user: str, reason: str) -> None:
        """Record the refusal once (outbox, skipped, with the reason), log it, answer 403."""
        log.warning("kernel request %s refused: %s", req.state_id[:40], reason)
        private = (
            bool((req.payload.get("repository") or {}).get("private"))
            if isinstance(req.payload.get("repository"), dict)
            else False
        )
        repo = req.repository or "unknown/unknown"
        result = ActionResult(
            idempotency_key=f"kernel-{req.state_id}"[:100],
            kind=ActionKind.NONE,
            repo=repo,  # outbox_json stores a private one by its (keyed) hash, and seals the clear result
            status=ActionStatus.SKIPPED,
            detail=f"out of scope: {reason}",
            at=self.ctx.clock.now(),
        )
        try:
            state_id = valid_state_id(req.state_id)
            record = outbox_json(user, Outcome(state_id, result, None, private=private), self.ctx.sealer, result.at)
            once = partial(transactions.record_outcome, state_id=state_id, record=record)
            self.ctx.storage.update(once, f"kernel: state {state_id[:40]} out of scope")
        except (SymbioteError, ValueError) as exc:
            log.warning("could not record the refusal of kernel request %s (%s)", req.state_id[:40], exc)
        raise ApiError(403, "out_of_scope", reason)

    def handle(
        self, data: dict[str, Any], path_state_id: str | None, header: str | None, base_url: str = "http://testserver"
    ) -> KernelAnswer:
        """Verify the kernel's signed inputs (and ``X-Hub-Signature-256``, if sent), then act once."""
        signature = data.get("signature")
        if header is not None and (not isinstance(signature, str) or header.strip() != f"sha256={signature}"):
            raise ApiError(400, "invalid_signature", "X-Hub-Signature-256 does not match the body's signature")
        if path_state_id is not None and data.get("stateId") != path_state_id:
            raise ApiError(400, "invalid_body", "the body's stateId is not the one in the path")
        settings = self.ctx.settings
        try:
            # Verified here first, so that only the kernel's own requests ever wait for storage.
            req = parse_and_verify(data, public_key_pem=settings.kernel_public_key, now=self.ctx.clock.now())
            scope = self.scope(req, base_url)
            reason = out_of_scope(req, scope)
            if reason is not None:
                self.refuse(req, scope.user, reason)
            if self.ctx.mode is WorkerMode.ACTIONS:
                return self._dispatch(req, data, base_url)
            outcome = act_on_kernel_inputs(
                settings, data, clock=self.ctx.clock, storage=self.ctx.storage, claims=self.ctx.claims, scope=scope
            )
        except SignatureError:
            raise ApiError(400, "invalid_signature", "Invalid signature") from None
        except InputError as exc:
            raise ApiError(400, "invalid_body", exc.message) from None
        assert outcome.state_id is not None, "the kernel's inputs always carry a state id"
        output = KernelOutput.model_validate(kernel_output(outcome.result))
        return KernelAnswer(state_id=outcome.state_id, output=output)

    def _dispatch(self, req: KernelRequest, data: dict[str, Any], base_url: str) -> KernelAnswer:
        """Actions mode: the sender's own fork acts; the kernel hears that it was deferred to it."""
        sender = req.sender or ""
        # Multi-tenant: the sender's own fork. Single fork (SYMBIOTE_REPO): its owner's, whose scope
        # (allowed senders included) was checked above.
        tenant = self.tenancy.resolve(sender if self.tenancy.multi_tenant else self.tenancy.served_user())
        state_id = valid_state_id(req.state_id)
        self.states.dispatch(tenant, state_id, "kernel", dict(data), base_url)
        output = KernelOutput(
            status=ActionStatus.DEFERRED,
            kind=ActionKind.NONE,
            url=None,
            detail=f"handed to {tenant.user}'s Symbiote",
        )
        return KernelAnswer(state_id=state_id, output=output)
